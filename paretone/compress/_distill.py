"""Operator ``distill``: fine-tune the student on the teacher's soft outputs, and the logits cache.

The entry holds the temperature T and the weight alpha of the soft term; the loss itself is the
task's (``Task.distillation_loss``). A recipe without the entry distils at the defaults
(T = 4, alpha = 0.5). A search fine-tunes many students from one teacher on one dataset;
re-running the teacher in every trial would waste most of the compute, so its logits on the
training set are cached in a safetensors file keyed by a hash of the teacher's weights and the data.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from paretone._io import write_atomic
from paretone.audio import WaveformSet
from paretone.compress._operator import (
    Frozen,
    Operator,
    Param,
    UniformSetting,
    mapping,
    number,
    number_pair,
    only,
    register_operator,
)
from paretone.errors import ConfigError
from paretone.models import AudioModel, ModelStructure


@dataclass(frozen=True)
class Distill(Operator):
    """Loss = alpha * soft term at temperature T + (1 - alpha) * the task's hard loss."""

    temperature: float = 4.0
    alpha: float = 0.5

    key = "distill"
    order = 40
    settings = ("temperature", "alpha")

    def __post_init__(self) -> None:
        if not (
            isinstance(self.temperature, int | float)
            and math.isfinite(self.temperature)
            and self.temperature > 0
        ):
            raise ConfigError(f"distillation temperature must be positive, got {self.temperature}")
        if not (isinstance(self.alpha, int | float) and 0 <= self.alpha <= 1):
            raise ConfigError(f"distillation alpha must be in [0, 1], got {self.alpha}")

    @classmethod
    def from_entry(cls, entry: Any) -> Distill:
        entry = mapping(entry, "recipe distill")
        only(entry, ("temperature", "alpha"), "recipe distill")
        return cls(
            number(entry.get("temperature", 4.0), "recipe distill.temperature"),
            number(entry.get("alpha", 0.5), "recipe distill.alpha"),
        )

    def to_entry(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "alpha": self.alpha}

    def check(self, structure: ModelStructure) -> None:
        pass

    def describe(self, structure: ModelStructure) -> list[str]:
        return [
            f"Distilled from the teacher at temperature {self.temperature:.2f}, KD weight {self.alpha:.2f}."
        ]

    @classmethod
    def parameters(
        cls, structure: ModelStructure, settings: Mapping[str, Any], frozen: Frozen
    ) -> list[Param]:
        if frozen(cls.key):
            return []
        low, high = number_pair(settings.get("temperature", (1.0, 8.0)), "space: temperature")
        if not (math.isfinite(low) and math.isfinite(high) and 0 < low <= high):
            raise ConfigError(f"space: temperature range {[low, high]} must be 0 < low <= high")
        a_low, a_high = number_pair(settings.get("alpha", (0.0, 1.0)), "space: alpha")
        if not 0 <= a_low <= a_high <= 1:
            raise ConfigError(f"space: alpha range {[a_low, a_high]} must be within [0, 1], low <= high")
        return [
            Param("kd_temperature", "float", low, high, log=True),
            Param("kd_alpha", "float", a_low, a_high),
        ]

    @classmethod
    def from_params(cls, values: Mapping[str, Any], params: Sequence[Param]) -> Distill | None:
        if not params:
            return None
        return cls(float(values["kd_temperature"]), float(values["kd_alpha"]))

    @classmethod
    def uniform(cls, params: Sequence[Param], setting: UniformSetting) -> dict[str, Any]:
        if not params:
            return {}
        by_name = {p.name: p for p in params}
        t, a = by_name["kd_temperature"], by_name["kd_alpha"]
        return {"kd_temperature": math.sqrt(t.low * t.high), "kd_alpha": (a.low + a.high) / 2}


def _fingerprint(teacher: AudioModel, data: WaveformSet) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(teacher.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    digest.update(data.waveforms.contiguous().numpy().tobytes())
    digest.update(data.targets.contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


@torch.inference_mode()
def teacher_logits(
    teacher: AudioModel, data: WaveformSet, *, cache_dir: str | os.PathLike[str] | None = None
) -> torch.Tensor:
    """The teacher's logits on ``data`` (eval mode), read from or written to ``cache_dir``."""
    path = (
        Path(cache_dir) / f"teacher-logits-{_fingerprint(teacher, data)}.safetensors" if cache_dir else None
    )
    if path is not None and path.is_file():
        try:
            cached = load_file(str(path))["logits"]
            if cached.shape == (len(data), teacher.config.num_classes):
                return cached
        except (SafetensorError, OSError, KeyError):
            pass  # a damaged cache entry is recomputed and overwritten below
    was_training = teacher.training
    teacher.eval()
    logits = torch.cat([teacher(chunk) for chunk in data.waveforms.split(256)])
    teacher.train(was_training)
    if path is not None:
        write_atomic(path, lambda tmp: save_file({"logits": logits.contiguous()}, str(tmp)))
    return logits


register_operator(Distill)
