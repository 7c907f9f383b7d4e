"""Multi-fidelity: fine-tune every candidate briefly, promote the best fraction to the full epochs.

Latency and memory are predicted, so a trial's only costly objective is its validation metric, and
a short fine-tuning ranks candidates well enough to stop spending on the hopeless ones
(asynchronous successive halving with one rung, as ASHA: a trial is promoted when it ranks in
the best ``promote_fraction`` of every screening score the study holds, itself included, so no
worker waits for a rung to fill). Optuna cannot prune a multi-objective trial, so the driver runs
both stages inside one trial: a candidate not promoted is told with its screening score and
recorded as such (``TRIAL_FIDELITY_EPOCHS`` below its ``TRIAL_EPOCHS``); fronts, hypervolumes and
``pick`` read full-fidelity trials only.
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

    def promotes(self, score: float, others: Sequence[float]) -> bool:
        """Whether a screening ``score`` ranks within the best ``promote_fraction`` of itself and
        ``others`` (every other screening score in the study); the first candidates, before there
        are enough to rank, are promoted (at least one of every ``1 / promote_fraction``)."""
        better = sum(other > score for other in others)
        return better < max(1, math.floor((len(others) + 1) * self.promote_fraction))
