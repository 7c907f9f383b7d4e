"""Compression: the recipe of a compressed model, pruning, quantization, distillation and export.

Knows models and audio; knows no search.
"""

from paretone.compress._baseline import quantize_dynamic_baseline
from paretone.compress._deploy import LayerDeployment, export_compressed, quantize_onnx
from paretone.compress._describe import describe_recipe, layer_formats, summarize_recipe
from paretone.compress._distill import distillation_loss, teacher_logits
from paretone.compress._export import (
    INPUT_NAME,
    OUTPUT_NAME,
    export_onnx,
    onnx_logits,
    stamp_metadata,
    weight_nodes,
)
from paretone.compress._fake_quant import (
    ActivationQuantizer,
    FakeQuantConv2d,
    FakeQuantLinear,
    attach_fake_quant,
    quantize_weight,
)
from paretone.compress._formats import RUNTIME_FORMATS, WEIGHT_BITS, RuntimeFormat, format_for, formats_for
from paretone.compress._prune import importance_scores, prune, student_config
from paretone.compress._recipe import (
    IMPORTANCE_CRITERIA,
    RECIPE_FORMAT,
    Distillation,
    FrontEndChoice,
    LayerPrecision,
    Recipe,
    front_end_options,
)
from paretone.compress._student import (
    RECIPE_FILE,
    apply,
    calibrate_activations,
    load_student,
    save_student,
)

__all__ = [
    "IMPORTANCE_CRITERIA",
    "INPUT_NAME",
    "OUTPUT_NAME",
    "RECIPE_FILE",
    "RECIPE_FORMAT",
    "RUNTIME_FORMATS",
    "WEIGHT_BITS",
    "ActivationQuantizer",
    "Distillation",
    "FakeQuantConv2d",
    "FakeQuantLinear",
    "FrontEndChoice",
    "LayerDeployment",
    "LayerPrecision",
    "Recipe",
    "RuntimeFormat",
    "apply",
    "attach_fake_quant",
    "calibrate_activations",
    "describe_recipe",
    "distillation_loss",
    "export_compressed",
    "export_onnx",
    "format_for",
    "formats_for",
    "front_end_options",
    "importance_scores",
    "layer_formats",
    "load_student",
    "onnx_logits",
    "prune",
    "quantize_dynamic_baseline",
    "quantize_onnx",
    "quantize_weight",
    "save_student",
    "stamp_metadata",
    "student_config",
    "summarize_recipe",
    "teacher_logits",
    "weight_nodes",
]
