"""Converters and verifiers of the runtime formats: float ONNX nodes -> ONNX Runtime low-bit kernels.

Each converter turns a list of named float nodes of one model into one format; each verifier finds,
in the written graph, the node that carries a converted layer (None if it did not convert). The
format table (``_formats.RUNTIME_FORMATS``) names which converter and verifier each format uses.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper


@dataclass(frozen=True)
class Conversion:
    """What converters may need besides the graph: input batches for int8 activation calibration
    and pinned activation ranges per tensor (``{tensor: [{"scale", "zero_point"}]}``)."""

    feeds: list[dict[str, np.ndarray]] = field(default_factory=list)
    overrides: dict[str, list[dict]] = field(default_factory=dict)


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


def static_int8(model: onnx.ModelProto, nodes: list[str], conversion: Conversion) -> onnx.ModelProto:
    """QDQ int8 by ``quantize_static``: per-channel symmetric weights on [-64, 64] (``reduce_range``:
    see ``_formats.INTEGER_KERNEL_WEIGHT_QMAX``), calibrated uint8 activations (ranges pinned by
    ``conversion.overrides`` where the student learnt them)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    reader = type("Reader", (_Feeds, CalibrationDataReader), {})(conversion.feeds)
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "float.onnx", Path(tmp) / "qdq.onnx"
        onnx.save(model, source)
        quantize_static(
            source,
            target,
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_quantize=nodes,
            op_types_to_quantize=["MatMul", "Conv"],
            extra_options={
                "WeightSymmetric": True,
                "ActivationSymmetric": False,
                "TensorQuantOverrides": conversion.overrides,
            },
        )
        return onnx.load(target)


def dynamic_int8_lstm(model: onnx.ModelProto, nodes: list[str], conversion: Conversion) -> onnx.ModelProto:
    """DynamicQuantizeLSTM by ``quantize_dynamic``: int8 weights per gate row (symmetric, on
    [-64, 64] as static int8's), the inputs of each call quantized on the fly (so no calibration)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "float.onnx", Path(tmp) / "dynamic.onnx"
        onnx.save(model, source)
        quantize_dynamic(
            source,
            target,
            per_channel=True,
            reduce_range=True,
            weight_type=QuantType.QInt8,
            nodes_to_quantize=nodes,
            op_types_to_quantize=["LSTM"],
        )
        return onnx.load(target)


def matmul_nbits(bits: int, block_size: int):
    """MatMulNBits (``bits``-bit symmetric weights in blocks of ``block_size`` inputs, float activations)."""

    def convert(model: onnx.ModelProto, nodes: list[str], conversion: Conversion) -> onnx.ModelProto:
        from onnxruntime.quantization.matmul_nbits_quantizer import (
            DefaultWeightOnlyQuantConfig,
            MatMulNBitsQuantizer,
        )

        others = [n.name for n in model.graph.node if n.op_type == "MatMul" and n.name not in nodes]
        config = DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=True, bits=bits)
        quantizer = MatMulNBitsQuantizer(
            model,
            bits=bits,
            block_size=block_size,
            is_symmetric=True,
            nodes_to_exclude=others,
            algo_config=config,
        )
        quantizer.process()
        return quantizer.model.model

    return convert


def dequantized_conv_weight(bits: int):
    """An int``bits`` Conv weight initializer + per-channel DequantizeLinear: stored compressed,
    computed in float (ONNX Runtime has no weight-only integer conv kernel)."""

    def convert(model: onnx.ModelProto, nodes: list[str], conversion: Conversion) -> onnx.ModelProto:
        by_name = {n.name: n for n in model.graph.node}
        for name in nodes:
            _dequantize_weight(model, by_name[name], bits)
        return model

    return convert


def _dequantize_weight(model: onnx.ModelProto, node: onnx.NodeProto, bits: int) -> None:
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


# -- verifiers: (model, float node name) -> the node carrying the converted layer, or None --------


def _input_producers(model: onnx.ModelProto, node_name: str) -> tuple[onnx.NodeProto | None, list[str]]:
    producers = {out: n for n in model.graph.node for out in n.output}
    node = next((n for n in model.graph.node if n.name == node_name), None)
    kinds = [
        producers[i].op_type if i in producers else "initializer" for i in (node.input[:2] if node else [])
    ]
    return node, kinds


def kept_float(model: onnx.ModelProto, node_name: str) -> str | None:
    node, _ = _input_producers(model, node_name)
    return None if node is None else node.name


def qdq_inputs(model: onnx.ModelProto, node_name: str) -> str | None:
    """Both inputs dequantized: ONNX Runtime fuses the node into an integer kernel."""
    node, kinds = _input_producers(model, node_name)
    return node.name if node is not None and kinds == ["DequantizeLinear", "DequantizeLinear"] else None


def dequantized_weight(model: onnx.ModelProto, node_name: str) -> str | None:
    node, kinds = _input_producers(model, node_name)
    return node.name if node is not None and len(kinds) == 2 and kinds[1] == "DequantizeLinear" else None


def dynamic_lstm_node(model: onnx.ModelProto, node_name: str) -> str | None:
    found = next((n for n in model.graph.node if n.name == f"{node_name}_quant"), None)
    return found.name if found is not None and found.op_type == "DynamicQuantizeLSTM" else None


def nbits_node(bits: int):
    def verify(model: onnx.ModelProto, node_name: str) -> str | None:
        found = next((n for n in model.graph.node if n.name == f"{node_name}_Q{bits}"), None)
        return found.name if found is not None and found.op_type == "MatMulNBits" else None

    return verify
