"""Every study and trial attribute paretone writes and reads, in one place.

Optuna stores the study; paretone adds user attributes to it. Their names are the constants below
and only the functions here read or write them, so ``search`` and the way out (``ship``) cannot
disagree about what a key means. ``optuna-dashboard`` and the ``optuna`` CLI read a paretone study
as-is (its objectives are named with ``set_metric_names``).

Artifact paths are stored relative to the study's own folder (the folder of its SQLite or journal
file) when they lie inside it, so a study works from any working directory and after its folder
moves; studies written by paretone 0.1.0 (paths relative to the working directory) still read.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

from paretone._version import __version__
from paretone.errors import ConfigError
from paretone.search._budget import ResolvedBudget

# study attributes
STUDY_IDENTITY = "paretone"  # {version, teacher, teacher_relative, space}: what a resume must match
STUDY_BUDGET = "budget"  # ResolvedBudget.to_dict()
STUDY_DEVICE = "device"
STUDY_TEACHER_LATENCY = "teacher_predicted_latency_ms"
STUDY_TASK = "task"
STUDY_OBJECTIVES = "objectives"
STUDY_WARM_STARTS = "warm_starts"  # [{params, origin}] enqueued one at a time (0.1: [params])
STUDY_CHUNK = "chunk_samples"  # a streaming search: latency and budget are per chunk of this many samples
# trial attributes
TRIAL_RECIPE = "recipe"
TRIAL_PREDICTED = "predicted"
TRIAL_EPOCHS = "epochs"
TRIAL_HEARTBEAT = "heartbeat"
TRIAL_FINE_TUNED = "fine_tuned"
TRIAL_RESULT = "result"
TRIAL_STUDENT = "student_dir"
TRIAL_FAIL_REASON = "fail_reason"
TRIAL_RETRIED = "retried"
TRIAL_RETRY_OF = "retry_of"
TRIAL_WARM_START = "warm_start"
TRIAL_WARM_START_INDEX = "warm_start_index"
TRIAL_WARM_START_ORIGIN = "warm_start_origin"  # UNIFORM, LADDER or ALLOCATION
TRIAL_INVALID = "invalid"  # why a sampled point could not be built (told as infeasible)
TRIAL_FIDELITY_EPOCHS = "fidelity_epochs"  # epochs behind the told score (below TRIAL_EPOCHS: screening only)
TRIAL_SCREEN_SCORE = "screen_score"  # the validation metric after the screening epochs (multi-fidelity)
TRIAL_SCREEN_SECONDS = "screen_seconds"  # the screening stage's fine-tuning time (a promoted trial's too)
OLD_TRIAL_ARTIFACTS = "artifacts"  # paretone 0.1.0: a path relative to the working directory

LATENCY, PEAK = "latency_ms", "peak_bytes"
UNIFORM, LADDER, ALLOCATION, SAMPLER = "uniform", "ladder", "allocation", "sampler"  # where a point came from
DIRECTIONS = ("maximize", "minimize", "minimize")


@dataclass(frozen=True)
class Objectives:
    """The study's three objectives, by name: the task's validation metric (maximised), predicted
    latency in ms and predicted peak working memory in bytes (minimised)."""

    score: float
    latency_ms: float
    peak_bytes: float

    @staticmethod
    def names(task_objective: str) -> list[str]:
        return [task_objective, LATENCY, PEAK]

    def values(self) -> list[float]:
        return [self.score, self.latency_ms, self.peak_bytes]

    @classmethod
    def of(cls, trial: FrozenTrial) -> Objectives:
        """The one place that reads objectives by position."""
        score, latency_ms, peak_bytes = trial.values
        return cls(float(score), float(latency_ms), float(peak_bytes))


@dataclass(frozen=True)
class Predicted:
    """A candidate's predicted costs on the study's device."""

    latency_ms: float  # at the calibration's speed: the study's one scale (its objective)
    model_bytes: int
    peak_bytes: int
    macs: int
    params: int
    latency_interval_ms: tuple[float, float] | None = None  # 95%, around the screened latency
    speed_factor: float | None = None  # the device's speed when screened over at calibration, if probed
    straddles_budget: bool = False  # the interval holds the latency budget: only measuring tells
    latency_now_ms: float | None = None  # at the speed probed when screened (None: not probed)

    @property
    def screened_latency_ms(self) -> float:
        """The latency the budget was checked against: at the speed probed then, else as calibrated."""
        return self.latency_ms if self.latency_now_ms is None else self.latency_now_ms

    @classmethod
    def of(cls, trial: FrozenTrial) -> Predicted:
        data = trial.user_attrs.get(TRIAL_PREDICTED) or {}
        interval = data.get("latency_interval_ms")
        return cls(
            latency_ms=float(data.get("latency_ms", trial.values[1] if trial.values else 0.0)),
            model_bytes=int(data.get("model_bytes") or 0),
            peak_bytes=int(data.get("peak_bytes") or 0),
            macs=int(data.get("macs") or 0),
            params=int(data.get("params") or 0),
            latency_interval_ms=None if interval is None else (float(interval[0]), float(interval[1])),
            speed_factor=None if data.get("speed_factor") is None else float(data["speed_factor"]),
            straddles_budget=bool(data.get("straddles_budget", False)),
            latency_now_ms=None if data.get("latency_now_ms") is None else float(data["latency_now_ms"]),
        )


def storage_file(url: str) -> Path | None:
    """The file of a SQLite or journal storage URL; None for a server or in-memory storage."""
    if url.startswith("journal:") or (url.endswith(".log") and "://" not in url):
        return Path(url.removeprefix("journal:"))
    if url.startswith("sqlite:///") and url.removeprefix("sqlite:///") not in ("", ":memory:"):
        return Path(url.removeprefix("sqlite:///"))
    return None


def study_folder(storage: str) -> Path | None:
    """The folder of a file-based storage (SQLite, journal); None for a database server."""
    path = storage_file(storage)
    return None if path is None else path.parent


def _stored_path(path: Path, folder: Path | None) -> str:
    resolved = path.resolve()
    if folder is not None:
        try:
            return resolved.relative_to(folder.resolve()).as_posix()
        except ValueError:
            pass
    return str(resolved)


def _read_path(value: str, folder: Path | None) -> Path:
    path = Path(value)
    return path if path.is_absolute() or folder is None else folder / path


@dataclass(frozen=True)
class WarmStart:
    """A point the study begins with, and what chose it (``UNIFORM`` rule at the budget, the rule's
    ``LADDER`` below it, or ``ALLOCATION``)."""

    params: dict[str, Any]
    origin: str = UNIFORM

    @classmethod
    def from_stored(cls, value: Any) -> WarmStart:
        if isinstance(value, dict) and set(value) == {"params", "origin"}:
            return cls(dict(value["params"]), str(value["origin"]))
        return cls(dict(value))  # paretone 0.1 stored the uniform rule's parameters alone


@dataclass(frozen=True)
class StudyInfo:
    """What a paretone study was started with."""

    teacher: Path
    space: dict[str, Any]
    budget: ResolvedBudget
    device: str
    task: str
    version: str = __version__
    warm_starts: tuple[WarmStart, ...] = ()
    chunk_samples: int | None = None  # set for a streaming search (latencies per chunk)

    def identity(self) -> dict[str, Any]:
        """What a resumed search must match (as stored: JSON-plain)."""
        identity = {"teacher": str(self.teacher.resolve()), "space": self.space}
        if self.chunk_samples is not None:
            identity[STUDY_CHUNK] = self.chunk_samples
        return json.loads(json.dumps(identity))

    def write(self, study: optuna.Study, folder: Path | None) -> None:
        study.set_user_attr(
            STUDY_IDENTITY,
            {
                "version": self.version,
                **self.identity(),
                "teacher_relative": _stored_path(self.teacher, folder),
            },
        )
        study.set_user_attr(STUDY_BUDGET, self.budget.to_dict())
        study.set_user_attr(STUDY_DEVICE, self.device)
        study.set_user_attr(STUDY_TEACHER_LATENCY, self.budget.teacher_latency_ms)
        study.set_user_attr(STUDY_TASK, self.task)
        study.set_user_attr(STUDY_OBJECTIVES, study.metric_names)
        study.set_user_attr(STUDY_WARM_STARTS, [asdict(w) for w in self.warm_starts])

    @classmethod
    def read(cls, study: optuna.Study, folder: Path | None) -> StudyInfo:
        """ConfigError (naming the study) if it was not written by ``paretone search``."""
        attrs = study.user_attrs
        identity = attrs.get(STUDY_IDENTITY)
        if not isinstance(identity, dict) or "teacher" not in identity:
            raise ConfigError(f"study {study.study_name!r} was not written by `paretone search`")
        teacher = Path(identity["teacher"])
        relative = identity.get("teacher_relative")
        if relative and folder is not None and not teacher.is_dir():
            moved = _read_path(relative, folder)
            teacher = moved if moved.is_dir() else teacher
        budget = ResolvedBudget.from_dict(attrs.get(STUDY_BUDGET, {}))
        if budget.teacher_latency_ms != budget.teacher_latency_ms:  # NaN: a 0.1.0 study, stored beside
            teacher_ms = attrs.get(STUDY_TEACHER_LATENCY)
            if teacher_ms is not None:
                budget = ResolvedBudget(budget.given, budget.latency_ms, float(teacher_ms))
        return cls(
            teacher=teacher,
            space=identity.get("space", {}),
            budget=budget,
            device=str(attrs.get(STUDY_DEVICE, "unknown")),
            task=str(attrs.get(STUDY_TASK, "classification")),
            version=str(identity.get("version", "unknown")),
            warm_starts=tuple(WarmStart.from_stored(w) for w in attrs.get(STUDY_WARM_STARTS, ())),
            chunk_samples=None if identity.get(STUDY_CHUNK) is None else int(identity[STUDY_CHUNK]),
        )


# -- trials ------------------------------------------------------------------------------------


def fine_tuned(trial: FrozenTrial) -> bool:
    return bool(trial.user_attrs.get(TRIAL_FINE_TUNED))


def full_fidelity(trial: FrozenTrial) -> bool:
    """Fine-tuned for all its epochs (a trial told after screening only is not; nor a screened one)."""
    if not fine_tuned(trial):
        return False
    epochs = trial.user_attrs.get(TRIAL_FIDELITY_EPOCHS)
    return epochs is None or epochs >= trial.user_attrs.get(TRIAL_EPOCHS, epochs)


def screen_score(trial: FrozenTrial) -> float | None:
    value = trial.user_attrs.get(TRIAL_SCREEN_SCORE)
    return None if value is None else float(value)


def fine_tune_seconds(trial: FrozenTrial) -> float:
    """A fine-tuned trial's fine-tuning time in all its stages (a promoted one's screening included)."""
    promoted = full_fidelity(trial) and TRIAL_SCREEN_SECONDS in trial.user_attrs
    return float(trial.user_attrs[TRIAL_RESULT]["seconds"]) + (
        float(trial.user_attrs[TRIAL_SCREEN_SECONDS]) if promoted else 0.0
    )


def retried(trial: FrozenTrial) -> bool:
    return bool(trial.user_attrs.get(TRIAL_RETRIED))


def retry_of(trial: FrozenTrial) -> int | None:
    value = trial.user_attrs.get(TRIAL_RETRY_OF)
    return None if value is None else int(value)


def heartbeat(trial: FrozenTrial) -> float:
    start = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
    return float(trial.user_attrs.get(TRIAL_HEARTBEAT, start))


def warm_start_index(trial: FrozenTrial) -> int | None:
    value = trial.user_attrs.get(TRIAL_WARM_START_INDEX)
    return None if value is None else int(value)


def fail_reason(trial: FrozenTrial) -> str | None:
    return trial.user_attrs.get(TRIAL_FAIL_REASON)


def recipe_of(trial: FrozenTrial) -> dict[str, Any]:
    return dict(trial.user_attrs.get(TRIAL_RECIPE) or {})


def student_dir(trial: FrozenTrial, folder: Path | None) -> Path | None:
    """Where the trial's fine-tuned student was saved (None if it never was)."""
    value = trial.user_attrs.get(TRIAL_STUDENT)
    if value is not None:
        return _read_path(str(value), folder)
    old = trial.user_attrs.get(OLD_TRIAL_ARTIFACTS)
    if old is None:
        return None
    path = Path(old)
    if not path.is_absolute() and folder is not None and not path.is_dir():
        # relative to the working directory the search ran in: try the study folder's parents
        for base in (folder, *folder.parents):
            if (base / path).is_dir():
                return base / path
    return path


def feasible(trial: FrozenTrial) -> bool:
    return trial.state == TrialState.COMPLETE and all(c <= 0 for c in trial.constraints.values())


def set_attrs(trial: Trial, values: dict[str, Any]) -> None:
    for key, value in values.items():
        trial.set_user_attr(key, value)


def proposal_attrs(recipe: dict[str, Any], predicted: Predicted, epochs: int, now: float) -> dict[str, Any]:
    """Attributes of a freshly proposed trial (before it is screened or fine-tuned)."""
    return {
        TRIAL_RECIPE: recipe,
        TRIAL_PREDICTED: asdict(predicted),  # one attribute: every storage write is a transaction
        TRIAL_EPOCHS: epochs,
        TRIAL_HEARTBEAT: now,
    }


def result_attrs(result: Any, folder: Path | None, epochs: int) -> dict[str, Any]:
    """Attributes of a fine-tuned trial from its ``evaluators.TrialResult`` after ``epochs``."""
    data = asdict(result)
    student = Path(data.pop("artifacts"))
    return {
        TRIAL_RESULT: data,
        TRIAL_STUDENT: _stored_path(student, folder),
        TRIAL_FINE_TUNED: True,
        TRIAL_FIDELITY_EPOCHS: epochs,
    }


def screening_attrs(score: float, seconds: float) -> dict[str, Any]:
    return {TRIAL_SCREEN_SCORE: score, TRIAL_SCREEN_SECONDS: seconds}


def failure_attrs(reason: str, retry: bool) -> dict[str, Any]:
    return {TRIAL_FAIL_REASON: reason, TRIAL_RETRIED: retry}


def retry_attrs(trial: Trial | FrozenTrial) -> dict[str, Any]:
    """A retry's attributes: whose retry it is, and the warm start it repeats (if it is one)."""
    kept = (TRIAL_WARM_START, TRIAL_WARM_START_INDEX, TRIAL_WARM_START_ORIGIN)
    return {TRIAL_RETRY_OF: trial.number} | {k: trial.user_attrs[k] for k in kept if k in trial.user_attrs}


def warm_start_attrs(index: int, origin: str) -> dict[str, Any]:
    return {TRIAL_WARM_START: True, TRIAL_WARM_START_INDEX: index, TRIAL_WARM_START_ORIGIN: origin}


def origin(trial: FrozenTrial) -> str:
    """``UNIFORM``, ``LADDER`` or ``ALLOCATION`` for a warm start (or its retry), else ``SAMPLER``."""
    if not trial.user_attrs.get(TRIAL_WARM_START):
        return SAMPLER
    return str(trial.user_attrs.get(TRIAL_WARM_START_ORIGIN, UNIFORM))


def invalid_attrs(reason: str) -> dict[str, Any]:
    return {TRIAL_INVALID: reason}


def screened_attrs() -> dict[str, Any]:
    return {TRIAL_FINE_TUNED: False}


def set_running_attr(study: optuna.Study, trial: FrozenTrial, key: str, value: Any) -> None:
    """Set a user attribute on a RUNNING trial this process did not ask for (heartbeats, reasons)."""
    optuna.trial.Trial(study, trial._trial_id).set_user_attr(key, value)


def relative_to_cwd(path: Path) -> str:
    """A path as short as it can be printed for the user."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)
