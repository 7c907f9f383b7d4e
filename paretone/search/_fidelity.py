"""Multi-fidelity: fine-tune every candidate briefly, promote the best fraction to the full epochs.

Latency and memory are predicted, so a trial's only costly objective is its validation metric, and
a short fine-tuning ranks candidates well enough to stop spending on the hopeless ones
(asynchronous successive halving with one rung, as ASHA: a trial is promoted when it ranks in the
best ``promote_fraction`` of every screening result the study holds, itself included, so no worker
waits for a rung to fill). The ranking is multi-objective, as MO-ASHA's (Schmucker et al., 2021):
non-dominated sorting of (screening metric, predicted latency, predicted peak memory), then the
metric within a front. Ranking by the metric alone promotes only the slow, accurate candidates and
starves the fast end of the front: measured, that cut the hypervolume to a seventh
(``benchmarks/search.py --scale fidelity``).

Optuna cannot prune a multi-objective trial, so the driver runs both stages inside one trial: a
candidate not promoted is told with its screening score and recorded as such
(``TRIAL_FIDELITY_EPOCHS`` below its ``TRIAL_EPOCHS``); fronts, hypervolumes and ``pick`` read
full-fidelity trials only. A promoted candidate fine-tunes again from the teacher for the full
epochs (the learning-rate schedule spans them), so it costs screening plus full epochs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from paretone.errors import ConfigError


@dataclass(frozen=True)
class Fidelity:
    """``screen_epochs`` 0: every candidate fine-tunes its full epochs at once (no screening)."""

    screen_epochs: int = 0
    promote_fraction: float = 1 / 3

    def __post_init__(self) -> None:
        if (
            isinstance(self.screen_epochs, bool)
            or not isinstance(self.screen_epochs, int)
            or self.screen_epochs < 0
        ):
            raise ConfigError(
                f"--screen-epochs must be a whole number >= 0 (0: off), got {self.screen_epochs!r}"
            )
        if not (
            isinstance(self.promote_fraction, int | float)
            and not isinstance(self.promote_fraction, bool)
            and 0 < self.promote_fraction <= 1
        ):
            raise ConfigError(f"--promote-fraction must be a number in (0, 1], got {self.promote_fraction!r}")

    def flags(self) -> list[str]:
        """The command-line flags that ask for this fidelity (none when off)."""
        if not self.screen_epochs:
            return []
        return [f"--screen-epochs {self.screen_epochs}", f"--promote-fraction {self.promote_fraction:g}"]

    def first_epochs(self, epochs: int) -> int:
        """Epochs a new candidate fine-tunes first: the screening stage, if shorter than ``epochs``."""
        return self.screen_epochs if 0 < self.screen_epochs < epochs else epochs

    def promotes(self, candidate: Screened, others: Sequence[Screened]) -> bool:
        """Whether ``candidate`` ranks within the best ``promote_fraction`` of itself and ``others``
        (every other screening result in the study): by non-dominated front, then by metric. The
        first candidates, before there are enough to rank, are promoted (at least one of every
        ``1 / promote_fraction``); one no other result dominates always is."""
        points = [candidate, *others]
        fronts = front_indices(points)
        ahead = sum(
            (front, -point.score) < (fronts[0], -candidate.score)
            for front, point in zip(fronts[1:], others, strict=True)
        )
        return fronts[0] == 0 or ahead < max(1, math.floor(len(points) * self.promote_fraction))


@dataclass(frozen=True)
class Screened:
    """One candidate after screening: its validation metric (higher is better) and predicted costs."""

    score: float
    latency_ms: float
    peak_bytes: float

    def dominates(self, other: Screened) -> bool:
        at_least = (
            self.score >= other.score
            and self.latency_ms <= other.latency_ms
            and self.peak_bytes <= other.peak_bytes
        )
        return at_least and self != other


def front_indices(points: Sequence[Screened]) -> list[int]:
    """Each point's non-dominated front (0: dominated by none; 1: by front 0 only; ...)."""
    fronts, left, index = [0] * len(points), set(range(len(points))), 0
    while left:
        current = {i for i in left if not any(points[j].dominates(points[i]) for j in left)}
        for i in current:
            fronts[i] = index
        left, index = left - current, index + 1
    return fronts
