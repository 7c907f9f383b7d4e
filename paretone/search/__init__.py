"""The search: the Optuna study, its budget, screening by predicted cost, the Ray driver,
heartbeats and resume, and the study read back as candidates.

The only room that imports Optuna and Ray together; its attributes are defined in ``_attrs``.
"""

from paretone.search._attrs import (
    DIRECTIONS,
    Objectives,
    Predicted,
    StudyInfo,
    feasible,
    fine_tune_seconds,
    full_fidelity,
    storage_file,
    study_folder,
)
from paretone.search._budget import DEFAULT_LATENCY_FRACTION, Budget, ResolvedBudget
from paretone.search._costs import CostModel
from paretone.search._driver import Driver
from paretone.search._fidelity import Fidelity, Screened
from paretone.search._front import (
    Candidate,
    candidates,
    hypervolume,
    hypervolume_history,
    pareto_candidates,
    within,
)
from paretone.search._liveness import Liveness
from paretone.search._run import LOCAL_DEVICE, ensure_profile, precheck, run_search
from paretone.search._settings import SearchProgress, SearchSettings, SearchSummary
from paretone.search._speed import PROBE_INTERVAL_S, SpeedLog, SpeedWatch
from paretone.search._study import (
    SAMPLERS,
    check_resumable,
    check_storage,
    default_storage,
    load_study,
    make_sampler,
    make_storage,
    open_study,
)
from paretone.search._tally import tally
from paretone.search._workers import WorkerSetup

__all__ = [
    "DEFAULT_LATENCY_FRACTION",
    "DIRECTIONS",
    "LOCAL_DEVICE",
    "PROBE_INTERVAL_S",
    "SAMPLERS",
    "Budget",
    "Candidate",
    "CostModel",
    "Driver",
    "Fidelity",
    "Liveness",
    "Objectives",
    "Predicted",
    "ResolvedBudget",
    "Screened",
    "SearchProgress",
    "SearchSettings",
    "SearchSummary",
    "SpeedLog",
    "SpeedWatch",
    "StudyInfo",
    "WorkerSetup",
    "candidates",
    "check_resumable",
    "check_storage",
    "default_storage",
    "ensure_profile",
    "feasible",
    "fine_tune_seconds",
    "full_fidelity",
    "hypervolume",
    "hypervolume_history",
    "load_study",
    "make_sampler",
    "make_storage",
    "open_study",
    "pareto_candidates",
    "precheck",
    "run_search",
    "storage_file",
    "study_folder",
    "tally",
    "within",
]
