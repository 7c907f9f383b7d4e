"""Compression: recipes of operator entries, the operators, runtime formats and export.

A recipe (``Recipe``) is a set of operator entries; each operator (``Operator``:
``StudentArchitecture``, ``FrontEnd``, ``Prune``, ``Factorize``, ``Quantize``, ``Distill``) is one
module. The runtime-format table (``RUNTIME_FORMATS``) carries each format's converter and
verifier. Knows models, tasks and audio; knows no search.
"""

from paretone.compress._architecture import TEACHER, StudentArchitecture
from paretone.compress._baseline import front_end_nodes, quantize_dynamic_baseline
from paretone.compress._convert import Conversion
from paretone.compress._deploy import LayerDeployment, export_compressed, quantize_onnx
from paretone.compress._distill import Distill, teacher_logits
from paretone.compress._factorize import Factorize, FactorizedLinear, factorize_linear, resolve_rank
from paretone.compress._fake_quant import (
    ActivationQuantizer,
    FakeQuantConv2d,
    FakeQuantLinear,
    attach_fake_quant,
    quantize_weight,
)
from paretone.compress._formats import (
    FLOAT,
    INTEGER_KERNEL_WEIGHT_QMAX,
    NBITS_BLOCK,
    RUNTIME_FORMATS,
    RuntimeFormat,
    format_for_bits,
    formats_for,
    runtime_format,
)
from paretone.compress._front_end import (
    FRONT_END,
    FrontEnd,
    FrontEndChoice,
    FrontEndOptions,
    front_end_options,
    student_variants,
)
from paretone.compress._importance import IMPORTANCE, Importance, importance_named, register_importance
from paretone.compress._operator import (
    OPERATORS,
    Operator,
    Param,
    StudentPlan,
    UniformSetting,
    register_operator,
)
from paretone.compress._prune import Prune, top_indices
from paretone.compress._quantize import Quantize
from paretone.compress._recipe import RECIPE_FORMAT, RECIPE_V1, Recipe
from paretone.compress._student import RECIPE_FILE, apply, calibrate_activations, load_student, save_student

__all__ = [
    "FLOAT",
    "FRONT_END",
    "IMPORTANCE",
    "INTEGER_KERNEL_WEIGHT_QMAX",
    "NBITS_BLOCK",
    "OPERATORS",
    "RECIPE_FILE",
    "RECIPE_FORMAT",
    "RECIPE_V1",
    "RUNTIME_FORMATS",
    "TEACHER",
    "ActivationQuantizer",
    "Conversion",
    "Distill",
    "Factorize",
    "FactorizedLinear",
    "FakeQuantConv2d",
    "FakeQuantLinear",
    "FrontEnd",
    "FrontEndChoice",
    "FrontEndOptions",
    "Importance",
    "LayerDeployment",
    "Operator",
    "Param",
    "Prune",
    "Quantize",
    "Recipe",
    "RuntimeFormat",
    "StudentArchitecture",
    "StudentPlan",
    "UniformSetting",
    "apply",
    "attach_fake_quant",
    "calibrate_activations",
    "export_compressed",
    "factorize_linear",
    "format_for_bits",
    "formats_for",
    "front_end_nodes",
    "front_end_options",
    "importance_named",
    "load_student",
    "quantize_dynamic_baseline",
    "quantize_onnx",
    "quantize_weight",
    "register_importance",
    "register_operator",
    "resolve_rank",
    "runtime_format",
    "save_student",
    "student_variants",
    "teacher_logits",
    "top_indices",
]
