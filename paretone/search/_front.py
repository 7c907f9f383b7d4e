"""A finished study read back as candidates: the Pareto front, choices under a budget, hypervolume.

Only fine-tuned trials are candidates (a screened proposal has a predicted cost but no accuracy).
Latency and memory here are the predictions the search optimised; ``pick`` measures the chosen one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from paretone.errors import ConfigError
from paretone.search._study import feasible, make_storage


@dataclass(frozen=True)
class Candidate:
    """One fine-tuned trial: validation accuracy and predicted costs (latency ms, bytes)."""

    trial: int
    accuracy: float
    latency_ms: float
    memory_bytes: float  # the memory objective: predicted peak working memory (or stored bytes)
    model_bytes: int
    macs: int
    params: int
    feasible: bool  # within the budget the search ran with
    recipe: dict[str, Any]
    artifacts: str | None

    @classmethod
    def from_trial(cls, trial: FrozenTrial) -> Candidate:
        predicted = trial.user_attrs.get("predicted", {})
        return cls(
            trial=trial.number,
            accuracy=float(trial.values[0]),
            latency_ms=float(trial.values[1]),
            memory_bytes=float(trial.values[2]),
            model_bytes=int(predicted.get("model_bytes", 0)),
            macs=int(predicted.get("macs", 0)),
            params=int(predicted.get("params", 0)),
            feasible=feasible(trial),
            recipe=dict(trial.user_attrs.get("recipe", {})),
            artifacts=trial.user_attrs.get("artifacts"),  # the trial's student folder
        )


def load_study(name: str, storage: str) -> optuna.Study:
    """An existing study, read-only use; ConfigError naming what exists if it is not there."""
    backend = make_storage(storage)
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(backend))
    if name not in names:
        known = ", ".join(names) or "none"
        raise ConfigError(
            f"study {name!r} not found in {storage} (studies there: {known}); run `paretone search`"
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=backend)


def candidates(study: optuna.Study) -> list[Candidate]:
    """Every fine-tuned COMPLETE trial, in trial order."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return [Candidate.from_trial(t) for t in trials if t.user_attrs.get("fine_tuned") and t.values]


def _dominates(a: Candidate, b: Candidate) -> bool:
    better_or_equal = (
        a.accuracy >= b.accuracy and a.latency_ms <= b.latency_ms and a.memory_bytes <= b.memory_bytes
    )
    return better_or_equal and (a.accuracy, a.latency_ms, a.memory_bytes) != (
        b.accuracy,
        b.latency_ms,
        b.memory_bytes,
    )


def pareto_candidates(pool: list[Candidate]) -> list[Candidate]:
    """Members of ``pool`` no other member beats on accuracy, latency and memory; by latency."""
    front = [c for c in pool if not any(_dominates(o, c) for o in pool)]
    return sorted(front, key=lambda c: (c.latency_ms, -c.accuracy))


def within(
    pool: list[Candidate], *, latency_ms: float, memory_mb: float | None = None, size_mb: float | None = None
) -> list[Candidate]:
    """Candidates predicted within a budget, most accurate first (then fastest)."""
    fits = [
        c
        for c in pool
        if c.latency_ms <= latency_ms
        and (memory_mb is None or c.memory_bytes <= memory_mb * 1e6)
        and (size_mb is None or c.model_bytes <= size_mb * 1e6)
    ]
    return sorted(fits, key=lambda c: (-c.accuracy, c.latency_ms, c.memory_bytes))


def hypervolume(pool: list[Candidate], budget_ms: float) -> float:
    """Area (accuracy x ms) dominated by the candidates within ``budget_ms``, reference (0, budget)."""
    points = sorted((c.latency_ms, c.accuracy) for c in pool if c.latency_ms <= budget_ms)
    area, best = 0.0, 0.0
    for i, (latency_ms, accuracy) in enumerate(points):
        best = max(best, accuracy)
        right = points[i + 1][0] if i + 1 < len(points) else budget_ms
        area += best * (right - latency_ms)
    return area


def hypervolume_history(pool: list[Candidate], budget_ms: float) -> list[tuple[int, float]]:
    """(trial number, hypervolume of the candidates up to it), one row per fine-tuned trial."""
    if not (math.isfinite(budget_ms) and budget_ms > 0):
        raise ValueError(f"budget_ms must be a positive number, got {budget_ms}")
    ordered = sorted(pool, key=lambda c: c.trial)
    return [(c.trial, hypervolume(ordered[: i + 1], budget_ms)) for i, c in enumerate(ordered)]
