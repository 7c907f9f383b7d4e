"""Which bit-width combinations ONNX Runtime (CPU) can run, and how paretone exports each.

This table is the single source of truth for the search space (what may be sampled), the exporter
(what ONNX to write) and the hardware models (which kernels to calibrate). ``native`` says whether
the runtime executes a low-bit kernel; a non-native format is only *stored* compressed and computed
in float after dequantization, so it saves bytes but never time.
Whether a native format is also *faster* than float on a given CPU is not assumed here: that is
measured (int8 conv is 2x faster on this CPU, dynamic int8 conv 5x slower; see stack notes).
"""

from __future__ import annotations

from dataclasses import dataclass

from paretone.errors import ConfigError

WEIGHT_BITS = (2, 4, 8)


@dataclass(frozen=True)
class RuntimeFormat:
    name: str
    layer_kind: str  # "linear" or "conv2d"
    weight_bits: int | None
    activation_bits: int | None
    onnx: str  # what the exported graph holds for the layer
    native: bool


RUNTIME_FORMATS: tuple[RuntimeFormat, ...] = (
    RuntimeFormat("float", "linear", None, None, "MatMul/Gemm (fp32)", True),
    RuntimeFormat("float", "conv2d", None, None, "Conv (fp32)", True),
    RuntimeFormat("w8a8", "linear", 8, 8, "QDQ int8, static calibration -> integer MatMul", True),
    RuntimeFormat("w8a8", "conv2d", 8, 8, "QDQ int8, static calibration -> QLinearConv", True),
    *(
        RuntimeFormat(f"w{b}", "linear", b, None, f"MatMulNBits bits={b}, block 32, symmetric", True)
        for b in WEIGHT_BITS
    ),
    *(
        RuntimeFormat(f"w{b}", "conv2d", b, None, f"int{b} weight + DequantizeLinear -> Conv (fp32)", False)
        for b in (8,)
    ),
)


def format_for(layer_kind: str, weight_bits: int | None, activation_bits: int | None) -> RuntimeFormat:
    """The runtime format for a layer at these bit-widths; ConfigError if the runtime has none."""
    for fmt in RUNTIME_FORMATS:
        if (fmt.layer_kind, fmt.weight_bits, fmt.activation_bits) == (
            layer_kind,
            weight_bits,
            activation_bits,
        ):
            return fmt
    offered = ", ".join(
        f"w{f.weight_bits or 'float'}/a{f.activation_bits or 'float'}"
        for f in RUNTIME_FORMATS
        if f.layer_kind == layer_kind
    )
    raise ConfigError(
        f"{layer_kind} at weights {weight_bits or 'float'} / activations {activation_bits or 'float'} bits "
        f"has no ONNX Runtime kernel; choose one of {offered}"
    )


def formats_for(layer_kind: str) -> tuple[RuntimeFormat, ...]:
    return tuple(f for f in RUNTIME_FORMATS if f.layer_kind == layer_kind)
