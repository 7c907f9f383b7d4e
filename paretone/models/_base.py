"""Shared pieces of the model families: the front-end-first layout and a countable matmul."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from paretone.audio import LogMel
from paretone.models._structure import ModelStructure, QuantizableLayer


class MatMul(nn.Module):
    """``a @ b`` as a module, so that thop counts attention's matmuls like any other layer."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.matmul(a, b)


class AudioModel(nn.Module, ABC):
    """Waveform in, logits out: ``forward(w) == classify(features(w))``.

    Training code calls ``features`` and ``classify`` separately to augment the spectrogram in
    between; deployment calls ``forward``, so the exported graph starts at the raw waveform.
    """

    front_end: LogMel

    def features(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.front_end(waveform)

    @abstractmethod
    def classify(self, features: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def structure(self) -> ModelStructure: ...

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(waveform))


def linear_layer(name: str, layer: nn.Linear) -> QuantizableLayer:
    return QuantizableLayer(name, "linear", layer.in_features, layer.out_features, layer.weight.numel())


def conv_layer(name: str, layer: nn.Conv2d) -> QuantizableLayer:
    return QuantizableLayer(name, "conv2d", layer.in_channels, layer.out_channels, layer.weight.numel())
