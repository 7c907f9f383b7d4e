"""The Optuna study of a search: storage, sampler, objectives, constraints, trial bookkeeping.

Objectives: validation accuracy (maximise), predicted latency in ms and predicted memory in bytes
(minimise). Budgets are constraints Optuna knows about (``Trial.set_constraint``: ``latency_ms``
and ``memory_mb`` over budget, <= 0 means feasible), so every sampler prefers feasible candidates.
Everything a trial knows is stored in Optuna's own storage as user attributes: ``optuna-dashboard``
and the ``optuna`` CLI read a paretone study as-is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from paretone.errors import ConfigError

SAMPLERS = ("nsga2", "tpe", "gp", "random")
DIRECTIONS = ("maximize", "minimize", "minimize")
OBJECTIVES = ("accuracy", "latency_ms", "memory_bytes")


def default_storage(study: str, runs_dir: str | os.PathLike[str] = "runs") -> str:
    return f"sqlite:///{Path(runs_dir) / study / 'study.db'}"


def make_storage(url: str) -> optuna.storages.BaseStorage:
    """SQLite / PostgreSQL URL, or ``journal:PATH`` (a journal file several hosts can share)."""
    if url.startswith("journal:") or url.endswith(".log"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = Path(url.removeprefix("journal:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if url.startswith("sqlite:"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # One driver writes; a second one waits instead of failing with "database is locked".
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    if url.startswith(("postgresql", "mysql")):
        return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
    raise ConfigError(
        f"storage {url!r}: use sqlite:///PATH.db, postgresql://USER@HOST/DB or journal:PATH.log"
    )


def make_sampler(name: str, seed: int, *, startup_trials: int = 8) -> optuna.samplers.BaseSampler:
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, startup_trials))
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=startup_trials)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup_trials)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ConfigError(f"sampler {name!r}: use one of {', '.join(SAMPLERS)}")


def open_study(
    name: str, *, storage: str, sampler: optuna.samplers.BaseSampler, resume: bool
) -> optuna.Study:
    """Create a new study or load one to resume; a mismatch between the two is a clear error."""
    if resume and storage.startswith("sqlite:///") and not Path(storage.removeprefix("sqlite:///")).exists():
        raise ConfigError(
            f"study {name!r}: {storage} does not exist, nothing to resume (drop --resume to start it)"
        )
    backend = make_storage(storage)
    exists = name in {s.study_name for s in optuna.get_all_study_summaries(backend)}
    if exists and not resume:
        raise ConfigError(
            f"study {name!r} already exists in {storage}: add --resume, or pick another --study"
        )
    if resume and not exists:
        raise ConfigError(
            f"study {name!r} not found in {storage}: nothing to resume (drop --resume to start it)"
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        study_name=name, storage=backend, sampler=sampler, directions=list(DIRECTIONS), load_if_exists=resume
    )


def set_running_attr(study: optuna.Study, trial: FrozenTrial, key: str, value: Any) -> None:
    """Set a user attribute on a RUNNING trial this process did not ask for (heartbeats, reasons)."""
    optuna.trial.Trial(study, trial._trial_id).set_user_attr(key, value)


def finished(study: optuna.Study) -> list[FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False) if t.state in (TrialState.COMPLETE, TrialState.FAIL)]


def feasible(trial: FrozenTrial) -> bool:
    return trial.state == TrialState.COMPLETE and all(c <= 0 for c in trial.constraints.values())
