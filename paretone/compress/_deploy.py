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
from paretone.errors import ConfigError
from paretone.models import AudioModel, export_onnx, export_stream, family_of, weight_nodes
from paretone.runtime import INPUT_NAME, STREAM_INPUT

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
    chunk_samples: int | None = None,
    batch: int | None = None,
) -> list[LayerDeployment]:
    """Write ``student`` to ``path`` with each layer in its recipe's runtime format.

    ``calibration``: a few dozen real training waveforms (N, samples) for int8 activation ranges.
    ``chunk_samples``: write the streaming model instead (one chunk and its state per call; see
    ``models.export_stream``); ConfigError if the family cannot stream. ``batch``: a fixed batch
    size instead of a dynamic one. Returns, per quantizable layer, the format and the ONNX node
    that carries it.
    """
    quantize = recipe.get(Quantize)
    plain = _plain_copy(student)
    with tempfile.TemporaryDirectory() as tmp:
        if chunk_samples is None:
            model = onnx.load(export_onnx(plain, Path(tmp) / "float.onnx", batch=batch))
            # the export's own batch size: a fixed-shape model takes exactly ``batch`` clips per run
            feeds = [{INPUT_NAME: b.numpy().astype(np.float32)} for b in calibration.split(batch or 16)]
            feeds = [f for f in feeds if batch is None or len(f[INPUT_NAME]) == batch]
        else:
            stream = _streaming(plain, chunk_samples)
            model = onnx.load(export_stream(stream, Path(tmp) / "float.onnx", chunk_samples=chunk_samples))
            feeds = _stream_feeds(stream, calibration, chunk_samples)
    nodes = weight_nodes(model)
    plan = {
        leaf: (quantize.format_of(layer.name, layer.kind), nodes[leaf].name)
        for layer in student.structure().quantizable
        for leaf in leaf_layers(student, layer.name)
    }
    conversion = Conversion(feeds=feeds, overrides=_activation_overrides(model, student, plan))
    model, report = quantize_onnx(model, plan, conversion=conversion)
    del model.graph.value_info[:]  # shape hints the quantizer leaves: ONNX Runtime infers them again
    write_atomic(path, lambda tmp: onnx.save(model, str(tmp)))
    return report


def _streaming(model: AudioModel, chunk_samples: int) -> torch.nn.Module:
    stream = family_of(model.config).streaming(model)
    if stream is None:
        raise ConfigError(
            f"a {model.config.family} model cannot stream (it needs whole clips); "
            "run it on sliding windows, or pick a recurrent student"
        )
    hop = model.config.front_end.hop_length
    if chunk_samples <= 0 or chunk_samples % hop:
        raise ConfigError(f"a chunk of {chunk_samples} samples is not a whole number of {hop}-sample hops")
    return stream


def _stream_feeds(stream: torch.nn.Module, calibration: torch.Tensor, chunk_samples: int) -> list[dict]:
    """One chunk from the middle of each calibration clip, from the zero state (int8 ranges only)."""
    middle = max(0, calibration.shape[1] // 2 - chunk_samples // 2)
    chunks = calibration[:, middle : middle + chunk_samples].numpy().astype(np.float32)
    zeros = {name: np.zeros(shape, np.float32) for name, shape in stream.state_shapes().items()}
    return [{STREAM_INPUT: chunk[None], **zeros} for chunk in chunks[:32]]


__all__ = ["RUNTIME_FORMATS", "LayerDeployment", "export_compressed", "quantize_onnx"]
