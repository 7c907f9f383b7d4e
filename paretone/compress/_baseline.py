"""The one-liner users reach for before paretone: ONNX Runtime's ``quantize_dynamic`` of the teacher.

Measured beside every picked model, so the gain over it is a figure, not a claim.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import onnx

from paretone._io import write_atomic
from paretone.compress._convert import quiet_quantizer_logs


def quantize_dynamic_baseline(float_onnx: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """``quantize_dynamic`` (int8 weights, dynamic int8 activations, default settings) of a float model."""
    from onnxruntime.quantization import quantize_dynamic

    model = onnx.load(str(float_onnx))
    del model.graph.value_info[:]  # the dynamo export's shape hints make ONNX shape inference refuse it
    with tempfile.TemporaryDirectory() as tmp, quiet_quantizer_logs():
        source, target = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, str(source))
        quantize_dynamic(str(source), str(target))
        quantized = onnx.load(str(target))
    write_atomic(out, lambda tmp: onnx.save(quantized, str(tmp)))
    return Path(out)
