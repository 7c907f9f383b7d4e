"""Shared pieces of the model families: the front-end-first layout and a countable matmul."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import nn

from paretone.audio import LogMel
from paretone.models._registry import family_of
from paretone.models._structure import ModelStructure, QuantizableLayer


class MatMul(nn.Module):
    """``a @ b`` as a module, so that thop counts attention's matmuls like any other layer."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.matmul(a, b)


class AudioModel(nn.Module, ABC):
    """Waveform in, logits out: ``forward(w) == classify(features(w))``.

    Training code calls ``features`` and ``classify`` separately to augment the spectrogram in
    between; deployment calls ``forward``, so the exported graph starts at the raw waveform.
    ``config`` is the family's frozen configuration; its family answers every structural question.
    """

    front_end: LogMel
    config: Any

    def features(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.front_end(waveform)

    @abstractmethod
    def classify(self, features: torch.Tensor) -> torch.Tensor: ...

    def structure(self) -> ModelStructure:
        return family_of(self.config).structure(self.config)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(waveform))


def linear_layer(name: str, in_features: int, out_features: int) -> QuantizableLayer:
    return QuantizableLayer(name, "linear", in_features, out_features, in_features * out_features)


def conv_layer(name: str, in_channels: int, out_channels: int, kernel: tuple[int, int]) -> QuantizableLayer:
    params = in_channels * out_channels * kernel[0] * kernel[1]
    return QuantizableLayer(name, "conv2d", in_channels, out_channels, params)


class DenseWeightConv(nn.Module, ABC):
    """A 2-D convolution whose weight is computed from structured parameters (a quaternion
    convolution shares four component tensors through the Hamilton product).

    ``dense_weight()`` is the ordinary (out, in, kh, kw) weight it computes with; exported as is,
    the graph computes it from the stored parameters when the session loads. Compression treats it
    as a conv layer: fake quantization rounds the dense weight, and a quantized export stores the
    rounded dense weight as a plain ``Conv``.
    """

    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    padding: tuple[int, int]

    @abstractmethod
    def dense_weight(self) -> torch.Tensor: ...

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(x, self.dense_weight(), padding=self.padding)

    def count_macs(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
        """Multiply-accumulates of the dense convolution (what the exported Conv node computes)."""
        kh, kw = self.kernel_size
        return output.numel() * self.in_channels * kh * kw

    def folded(self) -> nn.Conv2d:
        """A plain ``nn.Conv2d`` holding the dense weight (the same function, stored densely)."""
        conv = nn.Conv2d(
            self.in_channels, self.out_channels, self.kernel_size, padding=self.padding, bias=False
        )
        with torch.no_grad():
            conv.weight.copy_(self.dense_weight())
        return conv
