"""Reading a study back: the Pareto front, choices under a budget, hypervolume, on known points."""

from __future__ import annotations

import pytest

from paretone.search import Candidate, hypervolume, hypervolume_history, pareto_candidates, within


def _candidate(trial: int, score: float, latency_ms: float, memory: float = 1.0) -> Candidate:
    return Candidate(trial, score, latency_ms, memory, 0, 0, 0, True, {}, None)


def test_front_choice_and_hypervolume_on_known_points():
    pool = [
        _candidate(0, 0.90, 1.0),
        _candidate(1, 0.95, 2.0),
        _candidate(2, 0.85, 1.5),  # dominated by 0
        _candidate(3, 0.95, 2.0, memory=2.0),  # dominated by 1 (more memory)
        _candidate(4, 0.99, 3.0),
    ]
    assert [c.trial for c in pareto_candidates(pool)] == [0, 1, 4]
    assert [c.trial for c in within(pareto_candidates(pool), latency_ms=2.5)] == [1, 0]
    assert within(pool, latency_ms=2.5, memory_mb=1.5e-6)[0].trial == 1
    # steps: 0.90 over [1, 2), 0.95 over [2, 2.5); trial 4 is beyond the budget
    assert hypervolume(pool, 2.5) == pytest.approx(0.90 * 1.0 + 0.95 * 0.5)
    history = hypervolume_history(pool, 2.5)
    assert [t for t, _ in history] == [0, 1, 2, 3, 4]
    assert [round(v, 6) for _, v in history] == [1.35, 1.375, 1.375, 1.375, 1.375]
