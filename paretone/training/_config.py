"""Training hyper-parameters as one plain dataclass, validated when built."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from paretone.errors import ConfigError


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser, schedule and augmentation settings; units in names."""

    epochs: int = 30
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    patience_epochs: int = 8  # early stop after this many epochs without a better validation score
    seed: int = 0
    # Waveform augmentation: random shift, speed/pitch change (a cheap stand-in for new voices), noise.
    shift_fraction: float = 0.1
    speed_range: float = 0.1
    noise_snr_db: tuple[float, float] = (15.0, 40.0)
    # SpecAugment on the log-mel features.
    freq_masks: int = 2
    freq_mask_bins: int = 8
    time_masks: int = 2
    time_mask_frames: int = 10

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0 or not self.weight_decay >= 0:
            raise ConfigError("train.lr must be positive and train.weight_decay non-negative")
        if not 0 <= self.label_smoothing < 1 or not 0 <= self.speed_range < 0.5:
            raise ConfigError("train.label_smoothing must be in [0, 1), speed_range in [0, 0.5)")
        if self.patience_epochs < 1 or self.warmup_epochs < 0:
            raise ConfigError("train.patience_epochs must be >= 1 and warmup_epochs >= 0")

    def without_augmentation(self) -> TrainConfig:
        """The same settings with every augmentation off (distillation from cached clean logits)."""
        return replace(
            self, shift_fraction=0.0, speed_range=0.0, noise_snr_db=(0.0, 0.0), freq_masks=0, time_masks=0
        )

    @classmethod
    def for_finetuning(cls, epochs: int = 8) -> TrainConfig:
        """Distillation of a compressed student: gentle lr, no warm-up, no augmentation."""
        return cls(epochs=epochs, lr=5e-4, warmup_epochs=0, patience_epochs=4).without_augmentation()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
