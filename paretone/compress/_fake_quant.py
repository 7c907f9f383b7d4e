"""Fake quantization for fine-tuning at the bit-widths a recipe assigns (straight-through gradients).

Weights: symmetric, per output channel, or per block of 32 inputs for weight-only linear layers (the
granularity MatMulNBits stores); a recurrent layer's per gate row; on [-64, 64] where the runtime's
kernel is integer x integer (``RuntimeFormat.weight_qmax`` says why). Activations: per tensor,
asymmetric 8 bit, on the layer's input, with a range tracked by an exponential moving average
during training and frozen in eval mode; a dynamically quantized LSTM's input range is each call's
own, as ONNX Runtime computes it.
The grid matches what the ONNX exporter writes, so the deployed model computes what was trained.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from paretone.compress._formats import RuntimeFormat
from paretone.models import DenseWeightConv


def _round_ste(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


def _format_weight(weight: torch.Tensor, fmt: RuntimeFormat) -> torch.Tensor:
    """``weight`` on the grid ``fmt`` stores (unchanged for float weights)."""
    if fmt.weight_bits is None:
        return weight
    return quantize_weight(weight, fmt.weight_bits, fmt.block_size, qmax=fmt.weight_qmax)


def quantize_weight(
    weight: torch.Tensor, bits: int, block_size: int | None = None, *, qmax: int | None = None
) -> torch.Tensor:
    """Symmetric fake quantization of a weight, per output channel (codes in [-qmax, qmax], qmax
    2^(bits-1) - 1 unless given) or per input block (MatMulNBits' grid; ``qmax`` must be None)."""
    if block_size is None:
        qmax = qmax or 2 ** (bits - 1) - 1
        flat = weight.reshape(weight.shape[0], -1)
        # ONNX Runtime's symmetric per-channel int8: scale = absmax / qmax, codes in [-qmax, qmax]
        scale = flat.detach().abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / qmax
        return (torch.clamp(_round_ste(flat / scale), -qmax, qmax) * scale).reshape(weight.shape)
    if qmax is not None:
        raise ValueError("a block grid's codes are fixed by its bits: pass qmax only for per-channel grids")
    qmax = 2 ** (bits - 1) - 1
    out_features, in_features = weight.shape
    pad = (-in_features) % block_size
    blocks = F.pad(weight, (0, pad)).reshape(out_features, -1, block_size)
    # MatMulNBits' symmetric grid: the block's largest-magnitude value v maps to code -2^(bits-1),
    # so scale = v / -2^(bits-1) carries v's sign; codes lie in [-2^(bits-1), 2^(bits-1) - 1].
    peak = blocks.gather(2, blocks.detach().abs().argmax(dim=2, keepdim=True))
    scale = torch.where(peak.abs() < 1e-12, torch.full_like(peak, -1e-12), peak / -(qmax + 1)).detach()
    quantized = torch.clamp(_round_ste(blocks / scale), -qmax - 1, qmax) * scale
    return quantized.reshape(out_features, -1)[:, :in_features]


class ActivationQuantizer(nn.Module):
    """Per-tensor asymmetric fake quantization with an EMA-tracked range (a buffer, so it is saved)."""

    def __init__(self, bits: int, momentum: float = 0.1) -> None:
        super().__init__()
        self.bits, self.momentum = bits, momentum
        self.register_buffer("range_min", torch.tensor(0.0))
        self.register_buffer("range_max", torch.tensor(0.0))
        self.register_buffer("initialized", torch.tensor(False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            low, high = x.detach().min(), x.detach().max()
            if not bool(self.initialized):
                self.range_min.copy_(low)
                self.range_max.copy_(high)
                self.initialized.fill_(True)
            else:
                self.range_min.lerp_(low, self.momentum)
                self.range_max.lerp_(high, self.momentum)
        if not bool(self.initialized):
            return x
        low, high = (
            torch.minimum(self.range_min, self.range_min.new_zeros(())),
            torch.maximum(self.range_max, self.range_max.new_zeros(())),
        )
        levels = 2**self.bits - 1
        scale = (high - low).clamp_min(1e-8) / levels
        zero_point = torch.round(-low / scale)
        q = torch.clamp(_round_ste(x / scale) + zero_point, 0, levels)
        return (q - zero_point) * scale


class FakeQuantLinear(nn.Linear):
    """An ``nn.Linear`` (same parameter names) that computes in a runtime format."""

    def __init__(self, source: nn.Linear, fmt: RuntimeFormat) -> None:
        super().__init__(source.in_features, source.out_features, bias=source.bias is not None)
        self.weight, self.bias = source.weight, source.bias
        self.format = fmt
        self.input_quant = _input_quantizer(fmt)

    def quantized_weight(self) -> torch.Tensor:
        return _format_weight(self.weight, self.format)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.input_quant(x), self.quantized_weight(), self.bias)

    def frozen(self) -> nn.Linear:
        """A plain float layer holding the rounded weights: what the exporter converts."""
        plain = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None)
        return _copy_rounded(self, plain)


class FakeQuantConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` (same parameter names) that computes in a runtime format."""

    def __init__(self, source: nn.Conv2d, fmt: RuntimeFormat) -> None:
        super().__init__(**_conv_shape(source))
        self.weight, self.bias = source.weight, source.bias
        self.format = fmt
        self.input_quant = _input_quantizer(fmt)

    def quantized_weight(self) -> torch.Tensor:
        return _format_weight(self.weight, self.format)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(self.input_quant(x), self.quantized_weight(), self.bias)

    def frozen(self) -> nn.Conv2d:
        """A plain float layer holding the rounded weights: what the exporter converts."""
        return _copy_rounded(self, nn.Conv2d(**_conv_shape(self)))


class FakeQuantDenseConv(nn.Module):
    """A ``DenseWeightConv`` (a quaternion convolution, ...) computing at a runtime format: its dense
    weight is rounded per output channel, as the export stores it.

    The source's structured parameters are registered here under their own names (so checkpoints
    keep their keys) and the source, held outside the module tree, computes the dense weight from
    those very tensors.
    """

    def __init__(self, source: DenseWeightConv, fmt: RuntimeFormat) -> None:
        super().__init__()
        for name, param in source.named_parameters(recurse=False):
            self.register_parameter(name, param)
        object.__setattr__(self, "_source", source)  # not a submodule: its parameters are ours
        self.in_channels, self.out_channels = source.in_channels, source.out_channels
        self.kernel_size, self.padding = source.kernel_size, source.padding
        self.format = fmt
        self.input_quant = _input_quantizer(fmt)

    @property
    def bias(self) -> None:
        return None

    def quantized_weight(self) -> torch.Tensor:
        return _format_weight(self._source.dense_weight(), self.format)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(self.input_quant(x), self.quantized_weight(), padding=self.padding)

    def count_macs(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
        return self._source.count_macs(inputs, output)

    def frozen(self) -> nn.Conv2d:
        """A plain conv holding the rounded dense weight: what the exporter converts."""
        plain = nn.Conv2d(
            self.in_channels, self.out_channels, self.kernel_size, padding=self.padding, bias=False
        )
        return _copy_rounded(self, plain)


class DynamicActivationQuantizer(nn.Module):
    """Per-tensor asymmetric fake quantization on the range of each call's own input (what
    ONNX Runtime's dynamic int8 kernels do); nothing learned, nothing stored."""

    def __init__(self, bits: int) -> None:
        super().__init__()
        self.bits = bits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = torch.minimum(x.detach().min(), x.new_zeros(()))
        high = torch.maximum(x.detach().max(), x.new_zeros(()))
        levels = 2**self.bits - 1
        scale = (high - low).clamp_min(1e-8) / levels
        zero_point = torch.round(-low / scale)
        return (torch.clamp(_round_ste(x / scale) + zero_point, 0, levels) - zero_point) * scale


class FakeQuantRNN(nn.Module):
    """A single-layer ``nn.LSTM``/``nn.GRU`` computing in a runtime format: its weights rounded per
    gate row, its input quantized per call. The source's parameters are registered here under
    their own names (checkpoints keep their keys); the source, outside the module tree, runs with
    the rounded tensors (``torch.func.functional_call``)."""

    def __init__(self, source: nn.RNNBase, fmt: RuntimeFormat) -> None:
        super().__init__()
        for name, param in source.named_parameters(recurse=False):
            self.register_parameter(name, param)
        object.__setattr__(self, "_source", source)
        self.format = fmt
        self.input_quant = (
            DynamicActivationQuantizer(fmt.activation_bits) if fmt.activation_bits else nn.Identity()
        )

    def rounded(self) -> dict[str, torch.Tensor]:
        return {
            name: _format_weight(p, self.format) if name.startswith("weight") else p
            for name, p in self.named_parameters(recurse=False)
        }

    def forward(self, x: torch.Tensor, *state: torch.Tensor) -> tuple:
        self._source.train(self.training)
        return torch.func.functional_call(self._source, self.rounded(), (self.input_quant(x), *state))

    def count_macs(self, inputs: tuple[torch.Tensor, ...], output: object) -> int:
        return self._source.count_macs(inputs, output)

    @torch.no_grad()
    def frozen(self) -> nn.RNNBase:
        """A plain layer holding the rounded weights: what the exporter converts."""
        plain = copy.deepcopy(self._source)
        for name, tensor in self.rounded().items():
            getattr(plain, name).copy_(tensor)
        return plain


def _input_quantizer(fmt: RuntimeFormat) -> nn.Module:
    return ActivationQuantizer(fmt.activation_bits) if fmt.activation_bits else nn.Identity()


def _conv_shape(conv: nn.Conv2d) -> dict:
    return {
        "in_channels": conv.in_channels,
        "out_channels": conv.out_channels,
        "kernel_size": conv.kernel_size,
        "stride": conv.stride,
        "padding": conv.padding,
        "dilation": conv.dilation,
        "groups": conv.groups,
        "bias": conv.bias is not None,
    }


@torch.no_grad()
def _copy_rounded(source: FakeQuantLayer, plain: nn.Module) -> nn.Module:
    plain.weight.copy_(source.quantized_weight())
    if source.bias is not None:
        plain.bias.copy_(source.bias)
    return plain


def attach_fake_quant(model: nn.Module, formats: dict[str, RuntimeFormat]) -> nn.Module:
    """Turn the named layers of ``model`` into fake-quantized ones, in place (weights kept)."""
    modules = dict(model.named_modules())
    for name, fmt in formats.items():
        if fmt.is_float:
            continue
        module = modules[name]
        if isinstance(module, nn.Linear):
            replacement: nn.Module = FakeQuantLinear(module, fmt)
        elif isinstance(module, nn.Conv2d):
            replacement = FakeQuantConv2d(module, fmt)
        elif isinstance(module, DenseWeightConv):
            replacement = FakeQuantDenseConv(module, fmt)
        elif isinstance(module, nn.RNNBase):
            replacement = FakeQuantRNN(module, fmt)
        else:
            raise TypeError(f"{name} is a {type(module).__name__}, not a quantizable layer")
        parent_name, _, child = name.rpartition(".")
        setattr(modules[parent_name], child, replacement)
    return model


FakeQuantLayer = FakeQuantLinear | FakeQuantConv2d | FakeQuantDenseConv | FakeQuantRNN


def fake_quant_layers(model: nn.Module) -> dict[str, FakeQuantLayer]:
    return {n: m for n, m in model.named_modules() if isinstance(m, FakeQuantLayer)}
