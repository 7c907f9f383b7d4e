"""The Optuna study of a search: storage (validated before anything starts), sampler, opening.

Objectives: the task's validation metric (maximise), predicted latency in ms and predicted peak
memory in bytes (minimise), named with ``set_metric_names``. Budgets are constraints Optuna knows
about (``Trial.set_constraint``: over budget when > 0), so every sampler prefers feasible candidates.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import optuna

from paretone.errors import ConfigError
from paretone.search._attrs import DIRECTIONS, Objectives, StudyInfo, storage_file

if TYPE_CHECKING:
    from paretone.search._settings import SearchSettings

SAMPLERS = ("nsga2", "tpe", "gp", "random")
STORAGE_FORMS = "sqlite:///PATH.db, postgresql://USER@HOST/DB or journal:PATH.log"
SQLITE_MAGIC = b"SQLite format 3\x00"


def default_storage(study: str, runs_dir: str | os.PathLike[str] = "runs") -> str:
    """The study's Optuna journal file, ``RUNS/STUDY/study.log``: one appended line per write, where
    SQLite commits a transaction per parameter (the driver's cost per candidate fell 5x with it,
    README "Throughput"). A ``study.db`` an earlier paretone made there is kept, so it resumes."""
    folder = Path(runs_dir) / study
    if (folder / "study.db").is_file():
        return f"sqlite:///{folder / 'study.db'}"
    return f"journal:{folder / 'study.log'}"


def _writable_folder(path: Path, url: str) -> None:
    folder = path.parent
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None or not existing.is_dir():
        raise ConfigError(f"storage {url!r}: {folder} cannot be created (a file is in the way)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"storage {url!r}: {existing} is not writable; choose a --storage you can write")


def _storage_error(url: str, exc: BaseException) -> ConfigError:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return ConfigError(f"storage {url!r} cannot be opened ({text[0][:200] if text else type(exc).__name__})")


def check_storage(url: str) -> None:
    """Everything ``make_storage`` checks, writing nothing: a file that does not exist yet is only
    checked for a writable folder to be created in."""
    path = storage_file(url)
    if path is not None and not path.exists():
        _writable_folder(path, url)
        return
    make_storage(url, create=False)


def make_storage(url: str, *, create: bool = True) -> optuna.storages.BaseStorage:
    """Open a storage URL, or raise ConfigError (one line) saying what is wrong with it.

    SQLite and journal files must live in a writable folder (``create``: the file and its folder
    may be made; else they must exist); an existing file must be a readable study database; a
    server must answer. In-memory storage is refused: a search's study must outlive its process.
    """
    import sqlalchemy.exc

    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"storage {url!r}: empty; use {STORAGE_FORMS}")
    if url.startswith("journal:") or (url.endswith(".log") and "://" not in url):
        return _journal(url, create)
    scheme = urlsplit(url).scheme.split("+")[0]
    if scheme == "sqlite":
        path_text = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else ""
        if not path_text or path_text == ":memory:" or url.startswith("sqlite://:memory:"):
            raise ConfigError(
                f"storage {url!r} is in memory or names no file: the study would vanish when the search "
                "ends; use sqlite:///PATH.db"
            )
        path = Path(path_text)
        if path.exists():
            if path.is_dir():
                raise ConfigError(f"storage {url!r}: {path} is a folder, not a database file")
            with open(path, "rb") as handle:
                head = handle.read(len(SQLITE_MAGIC))
            if head and head != SQLITE_MAGIC:
                raise ConfigError(
                    f"storage {url!r}: {path} is not a SQLite database (corrupt or another file)"
                )
        elif not create:
            raise ConfigError(f"storage {url!r}: {path} does not exist; run `paretone search` first")
        else:
            _writable_folder(path, url)
            path.parent.mkdir(parents=True, exist_ok=True)
        # One driver writes; a second one waits instead of failing with "database is locked".
        kwargs = {"engine_kwargs": {"connect_args": {"timeout": 60}}}
    elif scheme in ("postgresql", "mysql"):
        kwargs = {"engine_kwargs": {"pool_pre_ping": True}}
    else:
        raise ConfigError(f"storage {url!r}: unsupported; use {STORAGE_FORMS}")
    try:
        storage = optuna.storages.RDBStorage(url, **kwargs)
        storage.get_all_studies()  # reads the schema: a corrupt file or a dead server fails here
    except (
        sqlalchemy.exc.SQLAlchemyError,
        optuna.exceptions.StorageInternalError,
        RuntimeError,
        ValueError,
    ) as exc:
        raise _storage_error(url, exc) from None
    except ModuleNotFoundError as exc:
        raise ConfigError(f"storage {url!r} needs the database driver {exc.name!r}; install it") from None
    return storage


def _journal(url: str, create: bool) -> optuna.storages.BaseStorage:
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    path = Path(url.removeprefix("journal:"))
    if not path.name:
        raise ConfigError(f"storage {url!r} names no file; use journal:PATH.log")
    if path.is_dir():
        raise ConfigError(f"storage {url!r}: {path} is a folder, not a journal file")
    if not path.exists() and not create:
        raise ConfigError(f"storage {url!r}: {path} does not exist; run `paretone search` first")
    _writable_folder(path, url)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        storage = JournalStorage(JournalFileBackend(str(path)))
        storage.get_all_studies()
    except (ValueError, KeyError, TypeError, OSError, AssertionError) as exc:
        raise ConfigError(f"storage {url!r}: {path} is not a readable Optuna journal ({exc})") from None
    return storage


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


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    return sorted(s.study_name for s in storage.get_all_studies())


def open_study(
    name: str,
    *,
    storage: str,
    sampler: optuna.samplers.BaseSampler,
    resume: bool,
    objective: str,
) -> optuna.Study:
    """Create a new study or load one to resume; a mismatch between the two is a clear error.
    ``objective``: the name of the first objective (the task's validation metric)."""
    if resume and storage.startswith("sqlite:///") and not Path(storage.removeprefix("sqlite:///")).exists():
        raise ConfigError(
            f"study {name!r}: {storage} does not exist, nothing to resume (drop --resume to start it)"
        )
    backend = make_storage(storage)
    exists = name in study_names(backend)
    if exists and not resume:
        raise ConfigError(
            f"study {name!r} already exists in {storage}: add --resume, or pick another --study"
        )
    if resume and not exists:
        raise ConfigError(
            f"study {name!r} not found in {storage}: nothing to resume (drop --resume to start it)"
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=name, storage=backend, sampler=sampler, directions=list(DIRECTIONS), load_if_exists=resume
    )
    if not exists:
        with warnings.catch_warnings():  # experimental since Optuna 3.2, stable in use
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(Objectives.names(objective))
    return study


def load_study_to_resume(name: str, storage: str) -> optuna.Study:
    """The study ``--resume`` would continue, read without writing; ConfigError if there is none."""
    missing = f"study {name!r} not found in {storage}: nothing to resume (drop --resume to start it)"
    path = storage_file(storage)
    if path is not None and not path.exists():
        raise ConfigError(missing)
    if name not in study_names(make_storage(storage, create=False)):
        raise ConfigError(missing)
    return load_study(name, storage)


def load_study(name: str, storage: str) -> optuna.Study:
    """An existing study, for reading; ConfigError naming what exists if it is not there."""
    backend = make_storage(storage, create=False)
    names = study_names(backend)
    if name not in names:
        known = ", ".join(names) or "none"
        raise ConfigError(
            f"study {name!r} not found in {storage} (studies there: {known}); run `paretone search`"
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=backend)


def check_resumable(study: optuna.Study, ours: StudyInfo, settings: SearchSettings) -> None:
    """ConfigError unless ``study`` was started with this teacher, space and budget (as given)."""
    stored = StudyInfo.read(study, settings.folder)
    if stored.space.get("format") != ours.space.get("format"):
        raise ConfigError(
            f"study {settings.study!r} was started by paretone {stored.version}, whose search space this one "
            "cannot continue; `paretone pareto` and `pick` still read it: start a new --study to search on"
        )
    if stored.identity() != ours.identity():
        raise ConfigError(
            f"study {settings.study!r} was started with another teacher, search space or --chunk-ms; resume "
            "it with the same --teacher, space settings and --chunk-ms, or start a new --study"
        )
    if stored.budget.given != ours.budget.given:
        raise ConfigError(
            f"study {settings.study!r} was started with budget {' '.join(stored.budget.given.flags())}; "
            "resume it with the same --latency-budget-*, --memory-budget-mb and --size-budget-mb, or "
            "start a new --study"
        )
