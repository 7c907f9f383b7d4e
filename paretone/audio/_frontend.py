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
# "stft": torchaudio's MelSpectrogram (the ONNX STFT op); "dft": the same features as a Conv1d with a
# windowed-DFT kernel, 2-3x faster in ONNX Runtime and equal to "stft" within float rounding.
IMPLEMENTATIONS = ("stft", "dft")
# "center": frame t centred on sample t * hop, the signal reflected at both ends (torchaudio's
# default); "causal": frame t ends at sample (t + 1) * hop, zeros before the start, so a frame never
# waits for audio after it and a stream can compute it as soon as its hop has arrived.
PADDINGS = ("center", "causal")


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
    implementation: str = "stft"
    padding: str = "center"

    def __post_init__(self) -> None:
        for name in ("sample_rate", "clip_samples", "n_fft", "hop_length", "n_mels"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"front_end.{name} must be positive, got {getattr(self, name)}")
        if self.normalization not in NORMALIZATIONS:
            raise ConfigError(f"front_end.normalization {self.normalization!r}: use one of {NORMALIZATIONS}")
        if self.implementation not in IMPLEMENTATIONS:
            raise ConfigError(
                f"front_end.implementation {self.implementation!r}: use one of {IMPLEMENTATIONS}"
            )
        if self.padding not in PADDINGS:
            raise ConfigError(f"front_end.padding {self.padding!r}: use one of {PADDINGS}")
        if self.hop_length > self.n_fft:
            raise ConfigError("front_end.hop_length must not exceed n_fft (frames would skip audio)")

    @property
    def frames(self) -> int:
        """Number of spectrogram frames per clip."""
        if self.padding == "causal":
            return (self.clip_samples - self.hop_length) // self.hop_length + 1
        return self.clip_samples // self.hop_length + 1

    @property
    def context_samples(self) -> int:
        """Samples before a hop that its causal frame also reads (the STFT overlap)."""
        return self.n_fft - self.hop_length

    @property
    def n_freqs(self) -> int:
        return self.n_fft // 2 + 1


def mel_interpolation(to_bands: int, from_bands: int) -> torch.Tensor:
    """(to_bands, from_bands): linear interpolation, on the mel scale, of a value per mel band of a
    ``from_bands`` filterbank to the band centres of a ``to_bands`` one over the same range.

    Band ``i`` of ``n`` is centred at ``(i + 1) / (n + 1)`` of the range (the filterbank's points
    are equally spaced in mel, ``n + 2`` of them). A student with fewer bands keeps what read the
    teacher's: a per-band statistic ``v`` becomes ``mel_interpolation(coarse, fine) @ v``, and a
    weight ``W`` over bands ``W @ mel_interpolation(fine, coarse)``, which on coarse features that
    interpolate the fine ones computes what ``W`` computed."""
    if to_bands < 1 or from_bands < 1:
        raise ValueError("band counts must be >= 1")
    at = (torch.arange(to_bands, dtype=torch.float64) + 1) * (from_bands + 1) / (to_bands + 1) - 1
    at = at.clamp(0, from_bands - 1)
    low = at.floor().long().clamp(max=max(from_bands - 2, 0))
    frac = at - low
    out = torch.zeros(to_bands, from_bands, dtype=torch.float64)
    rows = torch.arange(to_bands)
    out[rows, low] = 1 - frac
    if from_bands > 1:
        out[rows, low + 1] += frac
    return out.float()


class LogMel(nn.Module):
    """Waveform (batch, samples) -> log-mel spectrogram (batch, n_mels, frames)."""

    def __init__(self, config: FrontEndConfig) -> None:
        super().__init__()
        self.config = config
        with torch.device("cpu"):  # small constants, computed for real even inside a meta-device build
            self.mel = self._mel(config)

    @staticmethod
    def _mel(config: FrontEndConfig) -> nn.Module:
        if config.implementation == "stft":
            return torchaudio.transforms.MelSpectrogram(
                sample_rate=config.sample_rate,
                n_fft=config.n_fft,
                hop_length=config.hop_length,
                n_mels=config.n_mels,
                f_min=config.f_min,
                f_max=config.f_max,
                power=2.0,
                center=config.padding == "center",
            )
        return DFTMelSpectrogram(config)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if self.config.padding == "causal" and self.config.implementation == "stft":
            waveform = torch.nn.functional.pad(waveform, (self.config.context_samples, 0))
        return self._finish(torch.log(self.mel(waveform) + 1e-6))

    def stream(self, context_and_hops: torch.Tensor) -> torch.Tensor:
        """The frames of a stream's next hops: (batch, context_samples + k * hop) -> (batch, n_mels,
        k). The context is the stream's previous ``context_samples`` samples (zeros at its start),
        so a stream's frames equal the whole recording's; causal, unnormalised front-ends only."""
        if self.config.padding != "causal" or self.config.normalization != "none":
            raise ValueError("only a causal front-end without per-utterance normalisation streams")
        if isinstance(self.mel, DFTMelSpectrogram):
            return torch.log(self.mel.frames(context_and_hops) + 1e-6)
        return torch.log(self.mel(context_and_hops) + 1e-6)  # centre=False: every full frame

    def _finish(self, features: torch.Tensor) -> torch.Tensor:
        if self.config.normalization == "utterance":
            # Per-utterance standardisation removes level differences between microphones and voices.
            mean = features.mean(dim=(1, 2), keepdim=True)
            std = features.std(dim=(1, 2), keepdim=True)
            features = (features - mean) / (std + 1e-5)
        return features


class DFTMelSpectrogram(nn.Module):
    """torchaudio's MelSpectrogram (centre, reflect padding, periodic Hann, HTK mels) as a strided
    Conv1d with cos/sin kernels and a matmul: ops every runtime has fast kernels for.

    Its constants derive from the config, so they are not saved with the weights.
    """

    def __init__(self, config: FrontEndConfig) -> None:
        super().__init__()
        n_fft, n_freqs = config.n_fft, config.n_freqs
        self.n_fft, self.hop_length, self.n_freqs = n_fft, config.hop_length, n_freqs
        self.causal = config.padding == "causal"
        time = torch.arange(n_fft, dtype=torch.float64)
        freq = torch.arange(n_freqs, dtype=torch.float64)
        angle = 2 * torch.pi * freq[:, None] * time[None, :] / n_fft
        window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
        kernel = torch.cat([torch.cos(angle) * window, -torch.sin(angle) * window])
        self.register_buffer("dft", kernel.float().unsqueeze(1), persistent=False)
        fbanks = torchaudio.functional.melscale_fbanks(
            n_freqs,
            f_min=config.f_min,
            f_max=config.f_max if config.f_max is not None else config.sample_rate / 2,
            n_mels=config.n_mels,
            sample_rate=config.sample_rate,
        )
        self.register_buffer("fbanks", fbanks.T.contiguous(), persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if self.causal:
            return self.frames(torch.nn.functional.pad(waveform, (self.n_fft - self.hop_length, 0)))
        pad = self.n_fft // 2
        return self.frames(torch.nn.functional.pad(waveform.unsqueeze(1), (pad, pad), mode="reflect")[:, 0])

    def frames(self, padded: torch.Tensor) -> torch.Tensor:
        """Mel power of every full frame of an already padded (batch, samples) signal."""
        padded = padded.unsqueeze(1)
        spectrum = torch.nn.functional.conv1d(padded, self.dft, stride=self.hop_length)
        real, imag = spectrum[:, : self.n_freqs], spectrum[:, self.n_freqs :]
        power = (real * real + imag * imag).transpose(1, 2)
        return torch.nn.functional.linear(power, self.fbanks).transpose(1, 2)
