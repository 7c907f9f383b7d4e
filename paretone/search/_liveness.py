"""Which trials are alive: heartbeats, stale trials of dead drivers, fail-and-retry-once.

Optuna's own heartbeat only works inside ``study.optimize``; with ask/tell (which a Ray driver
uses) the driver stamps a heartbeat attribute on each trial it runs, and any driver fails RUNNING
trials whose heartbeat is older than ``stale_after_s`` (their driver or worker died) and enqueues
each for one retry. A retry of a retry is never made, so a trial that kills its worker every time
ends as FAIL with its reason.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable

import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

from paretone.search._attrs import (
    TRIAL_HEARTBEAT,
    failure_attrs,
    heartbeat,
    retry_attrs,
    retry_of,
    set_running_attr,
)


class Liveness:
    def __init__(self, study: optuna.Study, *, heartbeat_s: float, stale_after_s: float) -> None:
        self.study, self.heartbeat_s, self.stale_after_s = study, heartbeat_s, stale_after_s
        self._last_beat = 0.0

    def beat(self, trials: Iterable[Trial], *, force: bool = False) -> None:
        """Stamp the heartbeat on this driver's running trials (at most every ``heartbeat_s``)."""
        now = time.time()
        if force or now - self._last_beat >= self.heartbeat_s:
            for trial in trials:
                trial.set_user_attr(TRIAL_HEARTBEAT, now)
            self._last_beat = now

    def fail(self, trial: Trial | FrozenTrial, reason: str, *, retry: bool) -> None:
        """End a RUNNING trial as FAIL with ``reason``; retry it once (never a retry of a retry)."""
        retry = retry and retry_of(trial) is None
        for key, value in failure_attrs(reason, retry).items():
            if isinstance(trial, Trial):
                trial.set_user_attr(key, value)
            else:
                set_running_attr(self.study, trial, key, value)
        self.study.tell(trial.number, state=TrialState.FAIL)
        if retry:
            self.study.enqueue_trial(dict(trial.params), user_attrs=retry_attrs(trial))

    def recover_stale(self, ours: Collection[int] = ()) -> int:
        """Fail (and retry once) RUNNING trials, other than ``ours``, whose heartbeat is older than
        ``stale_after_s``; return how many others are still alive (run by another driver)."""
        now, alive = time.time(), 0
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if trial.number in ours:
                continue
            silent = now - heartbeat(trial)
            if silent >= self.stale_after_s:
                self.fail(trial, f"no heartbeat for {silent:.0f} s: its driver or worker died", retry=True)
            else:
                alive += 1
        return alive
