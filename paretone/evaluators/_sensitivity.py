"""How much a teacher suffers from one compression choice alone, before any fine-tuning.

Each measured change sets one search parameter away from the teacher's own setting (one layer in
one format, one unit at one kept fraction, ...) and scores the resulting student on a slice of the
validation clips: how far its outputs moved from the teacher's (the task's distillation divergence
at T = 1, never negative), and the change of the task's loss and metric. AIMET's and HAWQ's
mixed-precision allocation start from the same per-layer measurement; here it feeds the search's
integer program (``paretone.search``), which uses the divergence: the student is distilled
towards the teacher, and on a few clips a weak teacher's loss can fall by chance when its weights
are perturbed, while the divergence only grows. Nothing here knows Optuna or the device.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from paretone._version import __version__
from paretone.audio import WaveformSet
from paretone.compress import Recipe, apply
from paretone.errors import ConfigError
from paretone.evaluators._trial import TeacherContext
from paretone.models import WEIGHTS_FILE
from paretone.training import predict_logits

SENSITIVITY_FORMAT = "paretone.sensitivity/1"
SENSITIVITY_CLIPS = 256  # validation clips each change is scored on


@dataclass(frozen=True)
class Change:
    """One search parameter set to one value, every other parameter at the teacher's setting."""

    parameter: str
    value: Any  # JSON-plain, as the search space stores it


@dataclass(frozen=True)
class Sensitivity:
    parameter: str
    value: Any
    divergence: float  # of its outputs from the teacher's (KL for single-label), >= 0, inf if not finite
    loss_change: float  # validation loss of the changed teacher minus the teacher's (>0: worse)
    metric_change: float  # its task metric minus the teacher's (<0: worse), in [-1, 1]

    @property
    def change(self) -> Change:
        return Change(self.parameter, self.value)


@dataclass(frozen=True)
class SensitivityTable:
    """The measured changes of one teacher on one split's first ``clips`` validation clips."""

    key: str  # what it was measured for (teacher weights, split, space, clips): see ``table_key``
    clips: int
    base_loss: float
    base_metric: float
    entries: tuple[Sensitivity, ...]

    def most_sensitive(self, count: int = 10) -> list[Sensitivity]:
        return sorted(self.entries, key=lambda e: -e.divergence)[:count]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": SENSITIVITY_FORMAT,
            "paretone_version": __version__,
            "key": self.key,
            "clips": self.clips,
            "base_loss": self.base_loss,
            "base_metric": self.base_metric,
            "entries": [asdict(e) for e in self.entries],
        }

    @classmethod
    def from_dict(cls, data: Any) -> SensitivityTable:
        """ConfigError for anything but a table this version writes."""
        if not isinstance(data, Mapping) or data.get("format") != SENSITIVITY_FORMAT:
            raise ConfigError(f"not a {SENSITIVITY_FORMAT} sensitivity table")
        try:
            entries = tuple(
                Sensitivity(str(e["parameter"]), _hashable(e["value"]), float(e["divergence"]),
                            float(e["loss_change"]), float(e["metric_change"]))
                for e in data["entries"]
            )  # fmt: skip
            return cls(str(data["key"]), int(data["clips"]), float(data["base_loss"]),
                       float(data["base_metric"]), entries)  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"malformed sensitivity table ({exc!r})") from None


def table_key(context: TeacherContext, space: Mapping[str, Any], clips: int) -> str:
    """A digest of what a table depends on: the teacher's weights, the split, the space, the clips."""
    digest = hashlib.sha256()
    digest.update((context.teacher_path / WEIGHTS_FILE).read_bytes())
    digest.update(repr((context.splits.name, sorted(space.items(), key=str), clips)).encode())
    return digest.hexdigest()[:32]


def measure_sensitivity(
    context: TeacherContext,
    changes: Sequence[tuple[Change, Recipe]],
    *,
    key: str,
    clips: int = SENSITIVITY_CLIPS,
    progress: Callable[[int, int], None] | None = None,
) -> SensitivityTable:
    """Score the teacher and each change's recipe (no fine-tuning) on the first ``clips``
    validation clips; ``progress(done, total)`` after each. A change whose student gives
    non-finite outputs is recorded as infinitely sensitive, not dropped."""
    if clips < 1:
        raise ValueError("clips must be >= 1")
    waves = context.sets.validation.waveforms[:clips]
    targets = context.sets.validation.targets[:clips]
    task = context.task

    with torch.inference_mode():
        teacher_logits = predict_logits(context.teacher, WaveformSet(waves, targets))

    def divergence(logits: torch.Tensor) -> float:
        kd = task.distillation_loss(logits, teacher_logits, targets, temperature=1.0, alpha=1.0)
        own = task.distillation_loss(teacher_logits, teacher_logits, targets, temperature=1.0, alpha=1.0)
        return max(0.0, float(kd - own))  # minus any floor a task's loss has at the teacher itself

    base_loss = float(task.loss(teacher_logits, targets))
    base_metric = float(task.score(teacher_logits, targets))
    entries = []
    for done, (change, recipe) in enumerate(changes, start=1):
        student = apply(recipe, context.teacher, data=context.sets.train, task=task)
        with torch.inference_mode():
            logits = predict_logits(student, WaveformSet(waves, targets))
        loss = float(task.loss(logits, targets))
        finite = math.isfinite(loss) and bool(torch.isfinite(logits).all())
        entries.append(
            Sensitivity(
                change.parameter,
                _hashable(change.value),
                divergence(logits) if finite else math.inf,
                loss - base_loss if finite else math.inf,
                float(task.score(logits, targets)) - base_metric,
            )
        )
        if progress is not None:
            progress(done, len(changes))
    return SensitivityTable(key, len(targets), base_loss, base_metric, tuple(entries))


def _hashable(value: Any) -> Any:
    """JSON lists back to tuples, so a stored value equals the one the space offers."""
    return tuple(_hashable(v) for v in value) if isinstance(value, list | tuple) else value
