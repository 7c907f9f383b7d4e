"""Training-time augmentation. Never part of an exported model."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from paretone.training._config import TrainConfig


def augment_waveforms(waves: torch.Tensor, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """Random circular shift, one speed/pitch factor per batch, and white noise at a random SNR."""
    batch, samples = waves.shape
    if config.shift_fraction > 0:
        limit = int(samples * config.shift_fraction)
        shifts = torch.randint(-limit, limit + 1, (batch,), generator=generator)
        index = (torch.arange(samples).unsqueeze(0) - shifts.unsqueeze(1)) % samples
        waves = waves.gather(1, index)
    if config.speed_range > 0:
        factor = 1 + (torch.rand((), generator=generator).item() * 2 - 1) * config.speed_range
        stretched = F.interpolate(
            waves.unsqueeze(1), scale_factor=factor, mode="linear", align_corners=False
        ).squeeze(1)
        waves = _centre(stretched, samples)
    low, high = config.noise_snr_db
    if high > 0:
        snr_db = low + torch.rand(batch, 1, generator=generator) * (high - low)
        power = waves.pow(2).mean(dim=1, keepdim=True).clamp_min(1e-10)
        noise = torch.randn(waves.shape, generator=generator)
        waves = waves + noise * torch.sqrt(power / 10 ** (snr_db / 10))
    return waves


def _centre(waves: torch.Tensor, samples: int) -> torch.Tensor:
    extra = waves.shape[1] - samples
    if extra >= 0:
        return waves[:, extra // 2 : extra // 2 + samples]
    return F.pad(waves, (-extra // 2, -extra - (-extra // 2)))


def spec_augment(features: torch.Tensor, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """Zero random frequency bands and time spans of (batch, mels, frames) features, per example.

    The masks are drawn on the CPU (``generator`` is a CPU generator) wherever the features are."""
    batch, mels, frames = features.shape
    keep = torch.ones(features.shape, dtype=torch.bool)
    for count, width, size, axis in (
        (config.freq_masks, config.freq_mask_bins, mels, 1),
        (config.time_masks, config.time_mask_frames, frames, 2),
    ):
        positions = torch.arange(size)
        for _ in range(count):
            widths = torch.randint(0, width + 1, (batch, 1), generator=generator)
            starts = (torch.rand(batch, 1, generator=generator) * (size - widths)).long()
            masked = (positions >= starts) & (positions < starts + widths)  # (batch, size)
            keep &= ~(masked.unsqueeze(2) if axis == 1 else masked.unsqueeze(1))
    return features * keep.to(features.device)
