"""What a study's trials add up to: counts for ``--trials``, and the state a progress line and the
search summary report (the front among full-fidelity feasible results, and where it came from)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from optuna.trial import FrozenTrial, TrialState

from paretone.search._attrs import fine_tuned, full_fidelity, origin, retried
from paretone.search._front import Candidate, pareto_candidates


def tally(trials: list[FrozenTrial]) -> tuple[int, int]:
    """(finished, screened): ``finished`` is what ``--trials`` counts, fine-tuned trials plus FAIL
    trials not retried. Candidates ``screened`` out by their predicted cost (COMPLETE, not
    fine-tuned) cost milliseconds and do not count, so a tight budget does not spend the count."""
    finished = screened = 0
    for t in trials:
        if t.state == TrialState.COMPLETE:
            finished += fine_tuned(t)
            screened += not fine_tuned(t)
        elif t.state == TrialState.FAIL:
            finished += not retried(t)
    return finished, screened


@dataclass(frozen=True)
class StudyState:
    fine_tuned: int  # at any fidelity
    partial_fidelity: int  # fine-tuned for the screening epochs only, not promoted
    failed: int
    screened: int
    front: int  # members of the feasible full-fidelity Pareto front
    best_score: float | None  # the best feasible full-fidelity validation metric
    front_origins: dict[str, int] = field(default_factory=dict)  # front members by what proposed them

    @classmethod
    def of(cls, trials: list[FrozenTrial]) -> StudyState:
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        feasible_pool = [
            c for c in (Candidate.from_trial(t) for t in complete if full_fidelity(t)) if c.feasible
        ]
        front = pareto_candidates(feasible_pool)
        by_number = {t.number: t for t in complete}
        return cls(
            fine_tuned=sum(1 for t in complete if fine_tuned(t)),
            partial_fidelity=sum(1 for t in complete if fine_tuned(t) and not full_fidelity(t)),
            failed=sum(1 for t in trials if t.state == TrialState.FAIL),
            screened=sum(1 for t in complete if not fine_tuned(t)),
            front=len(front),
            best_score=max((c.score for c in feasible_pool), default=None),
            front_origins=dict(Counter(origin(by_number[member.trial]) for member in front)),
        )
