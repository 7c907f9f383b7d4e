"""The runtime formats: what ONNX Runtime (CPU) executes for a layer, and how paretone exports each.

This table is the single source of truth for the search space (what may be sampled), the exporter
(which converter writes a format, which verifier checks it in the written graph), fake
quantization (the grid a format computes on) and the hardware models (which kernels to calibrate).
Adding a format is one row here (and its converter, if no existing one fits). ``native`` says
whether the runtime executes a low-bit kernel; a non-native format is only *stored* compressed and
computed in float after dequantization, so it saves bytes but never time. Whether a native format
is also *faster* than float on a given CPU is not assumed here: that is measured (int8 conv is 2x
faster on this CPU, dynamic int8 conv 5x slower; see the stack notes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import onnx

from paretone.compress import _convert
from paretone.compress._convert import Conversion
from paretone.errors import ConfigError

Converter = Callable[[onnx.ModelProto, list[str], Conversion], onnx.ModelProto]
Verifier = Callable[[onnx.ModelProto, str], "str | None"]
NBITS_BLOCK = 32  # MatMulNBits block size
# The largest weight code of a format whose kernel multiplies integer activations by integer weights
# (uint8 x int8 on x86). On CPUs without VNNI (AVX2 only: one AMD EPYC host of this machine kind is
# one) ONNX Runtime sums pairs of such products in int16 (vpmaddubsw), which saturates once a weight
# code passes 64: the shipped model would compute something else than the model fine-tuned
# (onnxruntime issues 5849 and 14642). On [-64, 64] (ONNX Runtime's ``reduce_range``), 2 x 255 x 64
# fits in int16, so every x86 CPU computes what was fine-tuned, at the same speed.
INTEGER_KERNEL_WEIGHT_QMAX = 64


@dataclass(frozen=True)
class RuntimeFormat:
    """One way a layer of ``layer_kind`` ("linear", "conv2d", "lstm", "gru") runs. ``block_size``:
    weights share a scale per block of that many inputs (weight-only formats), else per output
    channel (per gate row for recurrent layers).
    Converters run in ``stage`` order: static int8 calibrates activations on the float graph, so it
    goes first; weight-only conversions follow."""

    name: str
    layer_kind: str
    weight_bits: int | None
    activation_bits: int | None
    onnx: str  # what the exported graph holds for the layer
    native: bool
    verify: Verifier
    convert: Converter | None = None  # None: the float export is already this format
    stage: int = 0
    block_size: int | None = None

    @property
    def is_float(self) -> bool:
        return self.weight_bits is None and self.activation_bits is None

    @property
    def weight_qmax(self) -> int | None:
        """The largest code of the symmetric per-channel weight grid (None: float weights, or a
        block grid, whose codes its bits fix)."""
        if self.weight_bits is None or self.block_size is not None:
            return None
        if self.activation_bits is not None:  # an integer kernel: see INTEGER_KERNEL_WEIGHT_QMAX
            return INTEGER_KERNEL_WEIGHT_QMAX
        return 2 ** (self.weight_bits - 1) - 1


RUNTIME_FORMATS: tuple[RuntimeFormat, ...] = (
    RuntimeFormat("float", "linear", None, None, "MatMul/Gemm (fp32)", True, _convert.kept_float),
    RuntimeFormat("float", "conv2d", None, None, "Conv (fp32)", True, _convert.kept_float),
    RuntimeFormat(
        "w8a8",
        "linear",
        8,
        8,
        "QDQ int8, static calibration -> integer MatMul",
        True,
        _convert.qdq_inputs,
        _convert.static_int8,
        stage=1,
    ),
    RuntimeFormat(
        "w8a8",
        "conv2d",
        8,
        8,
        "QDQ int8, static calibration -> QLinearConv",
        True,
        _convert.qdq_inputs,
        _convert.static_int8,
        stage=1,
    ),
    *(
        RuntimeFormat(
            f"w{bits}",
            "linear",
            bits,
            None,
            f"MatMulNBits bits={bits}, block {NBITS_BLOCK}, symmetric",
            True,
            _convert.nbits_node(bits),
            _convert.matmul_nbits(bits, NBITS_BLOCK),
            stage=2,
            block_size=NBITS_BLOCK,
        )
        for bits in (2, 4, 8)
    ),
    RuntimeFormat("float", "lstm", None, None, "LSTM (fp32)", True, _convert.kept_float),
    RuntimeFormat(
        "w8a8-dynamic",
        "lstm",
        8,
        8,
        "DynamicQuantizeLSTM: int8 weights per gate row, inputs quantized per call",
        True,
        _convert.dynamic_lstm_node,
        _convert.dynamic_int8_lstm,
        stage=1,
    ),
    RuntimeFormat("float", "gru", None, None, "GRU (fp32)", True, _convert.kept_float),
    RuntimeFormat(
        "w8",
        "conv2d",
        8,
        None,
        "int8 weight + DequantizeLinear -> Conv (fp32)",
        False,
        _convert.dequantized_weight,
        _convert.dequantized_conv_weight(8),
        stage=3,
    ),
)
FLOAT = "float"
# Why a layer kind offers no quantized format, for the error that refuses one.
NO_LOW_BIT = {
    "gru": "ONNX Runtime has no int8 GRU kernel (its maintainers do not plan one: onnxruntime issue "
    "9796) and a GRU's recurrent weights never reach MatMulNBits, so GRU layers run float; "
    "use an lstm student for int8 recurrent layers",
}


def formats_for(layer_kind: str) -> tuple[RuntimeFormat, ...]:
    return tuple(f for f in RUNTIME_FORMATS if f.layer_kind == layer_kind)


def runtime_format(layer_kind: str, name: str) -> RuntimeFormat:
    """The format ``name`` for a layer of ``layer_kind``; ConfigError naming the offered ones."""
    for fmt in RUNTIME_FORMATS:
        if fmt.layer_kind == layer_kind and fmt.name == name:
            return fmt
    offered = ", ".join(f.name for f in formats_for(layer_kind))
    reason = f" ({NO_LOW_BIT[layer_kind]})" if layer_kind in NO_LOW_BIT else ""
    raise ConfigError(f"a {layer_kind} layer has no runtime format {name!r}{reason}; choose one of {offered}")


def format_for_bits(weight_bits: int | None, activation_bits: int | None) -> str:
    """The format name a ``paretone.recipe/1`` bit-width pair meant (``w8a8``, ``w4``, ``float``)."""
    if weight_bits is None and activation_bits is None:
        return FLOAT
    if weight_bits is None:
        raise ConfigError(f"activations at {activation_bits} bits need quantized weights too")
    return f"w{weight_bits}a{activation_bits}" if activation_bits else f"w{weight_bits}"
