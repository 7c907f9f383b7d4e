"""The search: Optuna study, Ray driver, budgets, heartbeats, resume and Pareto selection.

The only room that imports Optuna and Ray together.
"""

from paretone.search._budget import Budget
from paretone.search._driver import Driver, SearchSettings, SearchSummary
from paretone.search._front import (
    Candidate,
    candidates,
    hypervolume,
    hypervolume_history,
    load_study,
    pareto_candidates,
)
from paretone.search._pareto import ParetoReport, pareto_report
from paretone.search._pick import OverBudgetError, PickSettings, pick
from paretone.search._run import LOCAL_DEVICE, ensure_profile, run_search
from paretone.search._study import (
    DIRECTIONS,
    OBJECTIVES,
    SAMPLERS,
    default_storage,
    feasible,
    make_sampler,
    make_storage,
    open_study,
)

__all__ = [
    "DIRECTIONS",
    "LOCAL_DEVICE",
    "OBJECTIVES",
    "SAMPLERS",
    "Budget",
    "Candidate",
    "Driver",
    "OverBudgetError",
    "ParetoReport",
    "PickSettings",
    "SearchSettings",
    "SearchSummary",
    "candidates",
    "default_storage",
    "ensure_profile",
    "feasible",
    "hypervolume",
    "hypervolume_history",
    "load_study",
    "make_sampler",
    "make_storage",
    "open_study",
    "pareto_candidates",
    "pareto_report",
    "pick",
    "run_search",
]
