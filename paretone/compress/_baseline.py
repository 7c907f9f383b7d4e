"""The one-liners users reach for before paretone: ONNX Runtime's ``quantize_dynamic`` of the teacher,
as is and as a careful user runs it, with the front-end's nodes excluded (per-tensor int8 cannot hold
the power spectrum's dynamic range, so the plain one-liner loses most of the accuracy there).

Measured beside every picked model, so the gain over them is a figure, not a claim.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import onnx

from paretone._io import write_atomic
from paretone.compress._convert import quiet_quantizer_logs

# Every family holds its LogMel as ``front_end``; the export names nodes by module path.
FRONT_END_SCOPE = "front_end"


def front_end_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes the model's front-end module exported."""
    return [n.name for n in model.graph.node if n.name.split("/")[0].split(".")[0] == FRONT_END_SCOPE]


def quantize_dynamic_baseline(
    float_onnx: str | os.PathLike[str], out: str | os.PathLike[str], *, exclude_front_end: bool = False
) -> Path:
    """``quantize_dynamic`` (int8 weights, dynamic int8 activations, default settings) of a float
    model; ``exclude_front_end``: with ``nodes_to_exclude`` set to its front-end's nodes (ValueError
    if the graph has none by that name, rather than a baseline that silently excludes nothing)."""
    from onnxruntime.quantization import quantize_dynamic

    model = onnx.load(str(float_onnx))
    del model.graph.value_info[:]  # the dynamo export's shape hints make ONNX shape inference refuse it
    excluded = front_end_nodes(model) if exclude_front_end else []
    if exclude_front_end and not excluded:
        raise ValueError(f"{float_onnx}: no node of a {FRONT_END_SCOPE!r} module to exclude")
    with tempfile.TemporaryDirectory() as tmp, quiet_quantizer_logs():
        source, target = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, str(source))
        quantize_dynamic(str(source), str(target), nodes_to_exclude=excluded)
        quantized = onnx.load(str(target))
    write_atomic(out, lambda tmp: onnx.save(quantized, str(tmp)))
    return Path(out)
