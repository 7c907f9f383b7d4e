"""The study's warm starts: the candidates a search begins with, stored once in its ``StudyInfo``
(uniform rule first, then allocations, then the other uniform candidates) and handed to Optuna one
at a time, so each is asked like any other trial and a resumed study continues where it stopped.
"""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.trial import TrialState

from paretone.search._attrs import StudyInfo, WarmStart, warm_start_attrs, warm_start_index


class WarmStartQueue:
    """Enqueues the study's unused warm starts, one per call to ``enqueue_next``.

    Reads the study's storage on every call until every warm start has been used; not thread-safe
    (one driver loop calls it)."""

    def __init__(self, study: optuna.Study, *, folder: Path | None) -> None:
        self.study, self.folder = study, folder
        self._done = False

    def enqueue_next(self) -> None:
        """Enqueue the next unused warm start, unless a trial (a retry) is already waiting: Optuna
        serves waiting trials first come, first served, and a retry must not queue behind them."""
        if self._done or self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            return
        used = {warm_start_index(t) for t in self.study.get_trials(deepcopy=False)} - {None}
        for index, start in enumerate(self.starts()):
            if index not in used:
                self.study.enqueue_trial(start.params, user_attrs=warm_start_attrs(index, start.origin))
                return
        self._done = True

    def starts(self) -> tuple[WarmStart, ...]:
        return StudyInfo.read(self.study, self.folder).warm_starts

    def count(self, origin: str) -> int:
        """How many of the study's warm starts came from ``origin`` (e.g. ``ALLOCATION``)."""
        return sum(start.origin == origin for start in self.starts())
