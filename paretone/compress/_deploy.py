"""Export a compressed student to ONNX with real ONNX Runtime low-bit kernels.

Per layer, the recipe's runtime format (see ``_formats.RUNTIME_FORMATS``): the float export is
converted format by format, each with its own converter, and every requested conversion is
verified in the written graph with the format's verifier; a layer that did not convert is an
error, never a silent float fallback.
"""

from __future__ import annotations

import copy
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from paretone._io import write_atomic
from paretone.compress._convert import Conversion, quiet_quantizer_logs
from paretone.compress._fake_quant import ActivationQuantizer, fake_quant_layers
from paretone.compress._formats import RUNTIME_FORMATS, Converter, RuntimeFormat
from paretone.compress._quantize import Quantize, leaf_layers
from paretone.compress._recipe import Recipe
from paretone.models import AudioModel, export_onnx, weight_nodes
from paretone.runtime import INPUT_NAME

Plan = dict[str, tuple[RuntimeFormat, str]]  # layer label -> (format, ONNX node name)


@dataclass(frozen=True)
class LayerDeployment:
    layer: str
    format: RuntimeFormat
    onnx_node: str


def _plain_copy(student: AudioModel) -> AudioModel:
    """A float copy whose quantized layers hold their already-rounded weights."""
    deploy = copy.deepcopy(student).eval()
    modules = dict(deploy.named_modules())
    for name, layer in fake_quant_layers(deploy).items():
        parent, _, child = name.rpartition(".")
        setattr(modules[parent], child, layer.frozen())
    return deploy


def _activation_overrides(model: onnx.ModelProto, student: AudioModel, plan: Plan) -> dict[str, list[dict]]:
    """Pin int8 input ranges to the ones the student was fine-tuned with (ONNX Runtime would
    otherwise re-calibrate its own). A tensor feeding several layers (q, k, v) gets their union."""
    nodes = {n.name: n for n in model.graph.node}
    quantizers = {n: layer.input_quant for n, layer in fake_quant_layers(student).items()}
    ranges: dict[str, tuple[float, float]] = {}
    for layer, (fmt, node) in plan.items():
        quantizer = quantizers.get(layer)
        if fmt.activation_bits is None or not isinstance(quantizer, ActivationQuantizer):
            continue
        if not bool(quantizer.initialized):
            continue  # never observed: let ONNX Runtime calibrate this one
        tensor = nodes[node].input[0]
        low, high = min(quantizer.range_min.item(), 0.0), max(quantizer.range_max.item(), 0.0)
        old = ranges.get(tensor, (low, high))
        ranges[tensor] = (min(low, old[0]), max(high, old[1]))
    overrides = {}
    for tensor, (low, high) in ranges.items():
        scale = max(high - low, 1e-8) / 255
        overrides[tensor] = [
            {"scale": np.array(scale, np.float32), "zero_point": np.array(round(-low / scale), np.uint8)}
        ]
    return overrides


def quantize_onnx(
    model: onnx.ModelProto, plan: Plan, *, conversion: Conversion | None = None
) -> tuple[onnx.ModelProto, list[LayerDeployment]]:
    """Convert the float nodes named in ``plan`` to their formats, then verify every one.

    The one place that turns formats of ``RUNTIME_FORMATS`` into ONNX, shared by the exporter and
    the hardware micro-benchmarks (so what is calibrated is what is shipped). Raises RuntimeError
    if a node did not convert.
    """
    conversion = conversion or Conversion()
    model = copy.deepcopy(model)
    del model.graph.value_info[:]  # dynamo's value_info can disagree with ORT's shape inference
    # formats sharing a converter (w8a8 of linear and conv layers) convert in one call: a second
    # static-calibration pass over an already quantized graph would calibrate the wrong tensors
    groups: dict[Converter, list[str]] = {}
    stages: dict[Converter, int] = {}
    for fmt, node in plan.values():
        if fmt.convert is not None:
            groups.setdefault(fmt.convert, []).append(node)
            stages[fmt.convert] = fmt.stage
    with quiet_quantizer_logs():
        for convert in sorted(groups, key=stages.__getitem__):
            model = convert(model, groups[convert], conversion)
    report = []
    for layer, (fmt, node) in sorted(plan.items()):
        found = fmt.verify(model, node)
        if found is None:
            raise RuntimeError(f"export: layer {layer} did not convert to {fmt.name} ({fmt.onnx})")
        report.append(LayerDeployment(layer, fmt, found))
    return model, report


def export_compressed(
    student: AudioModel,
    recipe: Recipe,
    path: str | os.PathLike[str],
    *,
    calibration: torch.Tensor,
) -> list[LayerDeployment]:
    """Write ``student`` to ``path`` with each layer in its recipe's runtime format.

    ``calibration``: a few dozen real training waveforms (N, samples) for int8 activation ranges.
    Returns, per quantizable layer, the format and the ONNX node that carries it.
    """
    quantize = recipe.get(Quantize)
    with tempfile.TemporaryDirectory() as tmp:
        model = onnx.load(export_onnx(_plain_copy(student), Path(tmp) / "float.onnx"))
    nodes = weight_nodes(model)
    plan = {
        leaf: (quantize.format_of(layer.name, layer.kind), nodes[leaf].name)
        for layer in student.structure().quantizable
        for leaf in leaf_layers(student, layer.name)
    }
    conversion = Conversion(
        feeds=[{INPUT_NAME: batch.numpy().astype(np.float32)} for batch in calibration.split(16)],
        overrides=_activation_overrides(model, student, plan),
    )
    model, report = quantize_onnx(model, plan, conversion=conversion)
    del model.graph.value_info[:]  # shape hints the quantizer leaves: ONNX Runtime infers them again
    write_atomic(path, lambda tmp: onnx.save(model, str(tmp)))
    return report


__all__ = ["RUNTIME_FORMATS", "LayerDeployment", "export_compressed", "quantize_onnx"]
