"""The search: Optuna study, Ray driver, budgets, heartbeats, resume and Pareto selection.

The only room that imports Optuna and Ray together.
"""

from paretone.search._budget import Budget
from paretone.search._driver import Driver, SearchSettings, SearchSummary
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
    pareto_front,
)

__all__ = [
    "DIRECTIONS",
    "LOCAL_DEVICE",
    "OBJECTIVES",
    "SAMPLERS",
    "Budget",
    "Driver",
    "SearchSettings",
    "SearchSummary",
    "default_storage",
    "ensure_profile",
    "feasible",
    "make_sampler",
    "make_storage",
    "open_study",
    "pareto_front",
    "run_search",
]
