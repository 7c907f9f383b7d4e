"""A study read back as candidates: the Pareto front, choices under a budget, hypervolume.

Only trials fine-tuned for all their epochs are candidates (a screened proposal has a predicted
cost but no score; a multi-fidelity trial not promoted, only a screening score).
Latency and memory here are the predictions the search optimised; ``pick`` measures the chosen one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from paretone.search._attrs import Objectives, Predicted, feasible, full_fidelity, recipe_of, student_dir


@dataclass(frozen=True)
class Candidate:
    """One fine-tuned trial: the task's validation metric and predicted costs."""

    trial: int
    score: float  # the task's validation metric (accuracy for classification)
    latency_ms: float
    peak_bytes: float  # predicted peak working memory
    model_bytes: int
    macs: int
    params: int
    feasible: bool  # within the budget the search ran with
    recipe: dict[str, Any]
    student: Path | None  # the trial's fine-tuned student folder

    @classmethod
    def from_trial(cls, trial: FrozenTrial, folder: Path | None = None) -> Candidate:
        objectives, predicted = Objectives.of(trial), Predicted.of(trial)
        return cls(
            trial=trial.number,
            score=objectives.score,
            latency_ms=objectives.latency_ms,
            peak_bytes=objectives.peak_bytes,
            model_bytes=predicted.model_bytes,
            macs=predicted.macs,
            params=predicted.params,
            feasible=feasible(trial),
            recipe=recipe_of(trial),
            student=student_dir(trial, folder),
        )

    def costs(self) -> tuple[float, float, float]:
        return (-self.score, self.latency_ms, self.peak_bytes)


def candidates(study: optuna.Study, folder: Path | None = None) -> list[Candidate]:
    """Every COMPLETE trial fine-tuned for all its epochs (not one told after screening only), in
    trial order (``folder``: the study's own, for paths)."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return [Candidate.from_trial(t, folder) for t in trials if full_fidelity(t) and t.values]


def _dominates(a: Candidate, b: Candidate) -> bool:
    return all(x <= y for x, y in zip(a.costs(), b.costs(), strict=True)) and a.costs() != b.costs()


def pareto_candidates(pool: list[Candidate]) -> list[Candidate]:
    """Members of ``pool`` no other member beats on score, latency and memory; by latency."""
    front = [c for c in pool if not any(_dominates(o, c) for o in pool)]
    return sorted(front, key=lambda c: (c.latency_ms, -c.score))


def within(
    pool: list[Candidate], *, latency_ms: float, memory_mb: float | None = None, size_mb: float | None = None
) -> list[Candidate]:
    """Candidates predicted within a budget, best first (then fastest)."""
    fits = [
        c
        for c in pool
        if c.latency_ms <= latency_ms
        and (memory_mb is None or c.peak_bytes <= memory_mb * 1e6)
        and (size_mb is None or c.model_bytes <= size_mb * 1e6)
    ]
    return sorted(fits, key=lambda c: (-c.score, c.latency_ms, c.peak_bytes))


def hypervolume(pool: list[Candidate], budget_ms: float) -> float:
    """Area (score x ms) dominated by the candidates within ``budget_ms``, reference (0, budget)."""
    points = sorted((c.latency_ms, c.score) for c in pool if c.latency_ms <= budget_ms)
    area, best = 0.0, 0.0
    for i, (latency_ms, score) in enumerate(points):
        best = max(best, score)
        right = points[i + 1][0] if i + 1 < len(points) else budget_ms
        area += best * (right - latency_ms)
    return area


def hypervolume_history(pool: list[Candidate], budget_ms: float) -> list[tuple[int, float]]:
    """(trial number, hypervolume of the candidates up to it), one row per fine-tuned trial."""
    if not (math.isfinite(budget_ms) and budget_ms > 0):
        raise ValueError(f"budget_ms must be a positive number, got {budget_ms}")
    ordered = sorted(pool, key=lambda c: c.trial)
    return [(c.trial, hypervolume(ordered[: i + 1], budget_ms)) for i, c in enumerate(ordered)]
