"""The log-mel front-end, built as the first module of every model.

Keeping it inside the model means an exported ONNX file takes the raw waveform, and the
front-end's cost is part of every latency that paretone measures or predicts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torchaudio
from torch import nn

from paretone.errors import ConfigError

NORMALIZATIONS = ("none", "utterance")


@dataclass(frozen=True)
class FrontEndConfig:
    """Audio format and log-mel resolution. ``clip_samples`` fixes the model's input length."""

    sample_rate: int = 8000
    clip_samples: int = 8000
    n_fft: int = 256
    hop_length: int = 80
    n_mels: int = 64
    f_min: float = 20.0
    f_max: float | None = None
    normalization: str = "utterance"

    def __post_init__(self) -> None:
        for name in ("sample_rate", "clip_samples", "n_fft", "hop_length", "n_mels"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"front_end.{name} must be positive, got {getattr(self, name)}")
        if self.normalization not in NORMALIZATIONS:
            raise ConfigError(f"front_end.normalization {self.normalization!r}: use one of {NORMALIZATIONS}")
        if self.hop_length > self.n_fft:
            raise ConfigError("front_end.hop_length must not exceed n_fft (frames would skip audio)")

    @property
    def frames(self) -> int:
        """Number of spectrogram frames per clip (centre-padded STFT)."""
        return self.clip_samples // self.hop_length + 1

    @property
    def n_freqs(self) -> int:
        return self.n_fft // 2 + 1


class LogMel(nn.Module):
    """Waveform (batch, samples) -> log-mel spectrogram (batch, n_mels, frames)."""

    def __init__(self, config: FrontEndConfig) -> None:
        super().__init__()
        self.config = config
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=config.sample_rate,
            n_fft=config.n_fft,
            hop_length=config.hop_length,
            n_mels=config.n_mels,
            f_min=config.f_min,
            f_max=config.f_max,
            power=2.0,
        )

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        features = torch.log(self.mel(waveform) + 1e-6)
        if self.config.normalization == "utterance":
            # Per-utterance standardisation removes level differences between microphones and voices.
            mean = features.mean(dim=(1, 2), keepdim=True)
            std = features.std(dim=(1, 2), keepdim=True)
            features = (features - mean) / (std + 1e-5)
        return features
