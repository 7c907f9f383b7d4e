"""ONNX micro-models: one kernel each, in the graph pattern the exporter writes for it.

Float kernels are built by their kind (``models.KERNEL_KINDS``) in the same opset and op pattern as
the dynamo export of the real model; quantized ones then go through ``compress.quantize_onnx``, the
very function the exporter uses, so a calibrated w8a8 linear is the same QDQ graph a student ships
with.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx

from paretone._io import write_atomic
from paretone.compress import Conversion, quantize_onnx, runtime_format
from paretone.errors import ConfigError
from paretone.models import LAYER_NODE, Kernel


def _shape(value: onnx.ValueInfoProto) -> list[int]:
    return [dim.dim_value for dim in value.type.tensor_type.shape.dim]


def micro_model(kernel: Kernel, *, seed: int = 0) -> onnx.ModelProto:
    """The ONNX model of one kernel in its runtime format; RuntimeError if it would not convert."""
    rng = np.random.default_rng(seed)
    model = kernel.float_graph(rng)
    if not kernel.quantized:
        return model
    try:
        fmt = runtime_format(kernel.layer_kind, kernel.format)  # type: ignore[arg-type]
    except ConfigError as exc:
        raise ValueError(f"kernel {kernel.key}: {exc}") from None
    inputs = list(model.graph.input)
    feeds = [{v.name: rng.standard_normal(_shape(v)).astype(np.float32) for v in inputs} for _ in range(4)]
    quantized, _ = quantize_onnx(model, {LAYER_NODE: (fmt, LAYER_NODE)}, conversion=Conversion(feeds=feeds))
    return quantized


def save_micro_model(kernel: Kernel, path: str | os.PathLike[str]) -> Path:
    model = micro_model(kernel)
    write_atomic(path, lambda tmp: onnx.save(model, str(tmp)))
    return Path(path)
