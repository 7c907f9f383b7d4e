"""Export a compressed student to ONNX with real ONNX Runtime low-bit kernels.

Per layer, as the recipe says (see ``_formats.RUNTIME_FORMATS``):
- w8a8 (linear, conv): QDQ int8 via ``quantize_static`` (per-channel weights, calibrated
  activations), which ONNX Runtime fuses into integer kernels;
- w2/w4/w8 linear: ``MatMulNBits`` (block 32, symmetric) via ``MatMulNBitsQuantizer``;
- w8 conv: int8 initializer + ``DequantizeLinear`` (stored compressed, computed in float);
- float: untouched.
Every requested conversion is verified in the written graph; a layer that did not convert is an
error, never a silent float fallback.
"""

from __future__ import annotations

import copy
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

from paretone._io import write_atomic
from paretone.compress._export import INPUT_NAME, export_onnx, weight_nodes
from paretone.compress._fake_quant import ActivationQuantizer, fake_quant_layers
from paretone.compress._formats import RuntimeFormat, format_for
from paretone.compress._recipe import Recipe
from paretone.models import AudioModel


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


@contextmanager
def quiet_quantizer_logs() -> Iterator[None]:
    """ONNX Runtime's quantizers log every node (and advice on the root logger): keep errors only."""
    loggers = [logging.getLogger(), logging.getLogger("onnxruntime.quantization")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


class _Feeds:
    """ONNX Runtime CalibrationDataReader over a list of input feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._feeds: Iterator[dict[str, np.ndarray]] = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def _activation_overrides(
    model: onnx.ModelProto, student: AudioModel, plan: dict[str, tuple[RuntimeFormat, str]]
) -> dict[str, list[dict]]:
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


def _quantize_static(
    model: onnx.ModelProto,
    nodes: list[str],
    feeds: list[dict[str, np.ndarray]],
    overrides: dict[str, list[dict]],
) -> onnx.ModelProto:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    reader = type("Reader", (_Feeds, CalibrationDataReader), {})(feeds)
    with tempfile.TemporaryDirectory() as tmp:
        source, prepared, target = (Path(tmp) / f for f in ("float.onnx", "prepared.onnx", "qdq.onnx"))
        onnx.save(model, source)
        # ONNX shape inference only: ORT's optimizer would rename the nodes we address by name
        quant_pre_process(source, prepared, skip_optimization=True, skip_symbolic_shape=True)
        quantize_static(
            source,
            target,
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_quantize=nodes,
            op_types_to_quantize=["MatMul", "Conv"],
            extra_options={
                "WeightSymmetric": True,
                "ActivationSymmetric": False,
                "TensorQuantOverrides": overrides,
            },
        )
        return onnx.load(target)


def _matmul_nbits(model: onnx.ModelProto, nodes: list[str], bits: int) -> onnx.ModelProto:
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    others = [n.name for n in model.graph.node if n.op_type == "MatMul" and n.name not in nodes]
    config = DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=True, bits=bits)
    quantizer = MatMulNBitsQuantizer(
        model, bits=bits, block_size=32, is_symmetric=True, nodes_to_exclude=others, algo_config=config
    )
    quantizer.process()
    return quantizer.model.model


def _dequantized_conv_weight(model: onnx.ModelProto, node: onnx.NodeProto, bits: int) -> None:
    """Replace a Conv's float weight by an int8 initializer and a per-channel DequantizeLinear."""
    inits = {t.name: t for t in model.graph.initializer}
    weight = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
    qmax = 2 ** (bits - 1) - 1
    scale = np.maximum(np.abs(weight).reshape(weight.shape[0], -1).max(axis=1), 1e-12) / qmax
    codes = np.clip(np.round(weight / scale[:, None, None, None]), -qmax, qmax).astype(np.int8)
    base = node.input[1]
    model.graph.initializer.extend(
        [
            numpy_helper.from_array(codes, f"{base}_int8"),
            numpy_helper.from_array(scale.astype(np.float32), f"{base}_scale"),
            numpy_helper.from_array(np.zeros_like(codes[:, 0, 0, 0]), f"{base}_zero_point"),
        ]
    )
    model.graph.initializer.remove(inits[base])
    dq = helper.make_node(
        "DequantizeLinear",
        [f"{base}_int8", f"{base}_scale", f"{base}_zero_point"],
        [f"{base}_dequantized"],
        name=f"{node.name}_weight_dq",
        axis=0,
    )
    node.input[1] = f"{base}_dequantized"
    model.graph.node.insert(list(model.graph.node).index(node), dq)


def _verify(model: onnx.ModelProto, plan: dict[str, tuple[RuntimeFormat, str]]) -> list[LayerDeployment]:
    producers = {out: n for n in model.graph.node for out in n.output}
    nodes = {n.name: n for n in model.graph.node}
    report = []
    for layer, (fmt, node_name) in sorted(plan.items()):
        if fmt.weight_bits is not None and fmt.activation_bits is None and fmt.layer_kind == "linear":
            found = nodes.get(f"{node_name}_Q{fmt.weight_bits}")
            ok = found is not None and found.op_type == "MatMulNBits"
        else:
            found = nodes.get(node_name)
            kinds = [
                producers[i].op_type if i in producers else "initializer"
                for i in (found.input[:2] if found else [])
            ]
            if fmt.activation_bits:
                ok = kinds == ["DequantizeLinear", "DequantizeLinear"]
            elif fmt.weight_bits:
                ok = len(kinds) == 2 and kinds[1] == "DequantizeLinear"
            else:
                ok = found is not None
        if not ok:
            raise RuntimeError(f"export: layer {layer} did not convert to {fmt.name} ({fmt.onnx})")
        report.append(LayerDeployment(layer, fmt, found.name))
    return report


def quantize_onnx(
    model: onnx.ModelProto,
    plan: dict[str, tuple[RuntimeFormat, str]],
    *,
    feeds: list[dict[str, np.ndarray]],
    overrides: dict[str, list[dict]] | None = None,
) -> tuple[onnx.ModelProto, list[LayerDeployment]]:
    """Convert the float nodes named in ``plan`` ({label: (format, ONNX node name)}) to their formats.

    The one place that turns a format of ``RUNTIME_FORMATS`` into ONNX, shared by the exporter and
    the hardware micro-benchmarks (so what is calibrated is what is shipped). ``feeds``: input
    batches for int8 activation calibration; ``overrides``: pinned activation ranges per tensor.
    Raises RuntimeError if a node did not convert.
    """
    model = copy.deepcopy(model)
    del model.graph.value_info[:]  # dynamo's value_info can disagree with ORT's shape inference
    with quiet_quantizer_logs():
        int8 = [node for fmt, node in plan.values() if fmt.activation_bits == 8]
        if int8:
            model = _quantize_static(model, int8, feeds, overrides or {})
        for bits in (2, 4, 8):
            weight_only = [
                node
                for fmt, node in plan.values()
                if fmt.layer_kind == "linear" and fmt.weight_bits == bits and fmt.activation_bits is None
            ]
            if weight_only:
                model = _matmul_nbits(model, weight_only, bits)
    graph_nodes = {n.name: n for n in model.graph.node}
    for fmt, node in plan.values():
        if fmt.layer_kind == "conv2d" and fmt.weight_bits and fmt.activation_bits is None:
            _dequantized_conv_weight(model, graph_nodes[node], fmt.weight_bits)
    return model, _verify(model, plan)


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
    structure = {q.name: q for q in student.structure().quantizable}
    with tempfile.TemporaryDirectory() as tmp:
        model = onnx.load(export_onnx(_plain_copy(student), Path(tmp) / "float.onnx"))
    nodes = weight_nodes(model)
    plan = {}
    for name, layer in structure.items():
        precision = recipe.precision.get(name)
        bits = (precision.weight_bits, precision.activation_bits) if precision else (None, None)
        plan[name] = (format_for(layer.kind, *bits), nodes[name].name)
    overrides = _activation_overrides(model, student, plan)
    feeds = [{INPUT_NAME: batch.numpy().astype(np.float32)} for batch in calibration.split(16)]
    model, report = quantize_onnx(model, plan, feeds=feeds, overrides=overrides)
    del model.graph.value_info[:]  # shape hints the quantizer leaves: ONNX Runtime infers them again
    write_atomic(path, lambda tmp: onnx.save(model, str(tmp)))
    return report
