"""What a search is asked to do (``SearchSettings``, validated when made) and what it reports
(``SearchProgress`` after each event, ``SearchSummary`` at the end)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from paretone.errors import ConfigError
from paretone.search._attrs import study_folder
from paretone.search._budget import Budget, ResolvedBudget
from paretone.search._fidelity import Fidelity
from paretone.search._speed import PROBE_INTERVAL_S, SpeedLog
from paretone.search._study import SAMPLERS
from paretone.search._workers import TRIAL_MEMORY_BYTES
from paretone.spaces import SpaceConfig


def _is_number(value: object) -> bool:
    """A finite int or float, and not a bool (a config file's ``true`` is no number of seconds)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class SearchSettings:
    teacher: Path
    study: str
    storage: str
    trials: int = 12
    budget: Budget = field(default_factory=Budget)
    workers: int = 1
    ray_address: str | None = None
    sampler: str = "tpe"  # multivariate TPE after the warm starts: benchmarks/search.py, seeds-long
    seed: int = 0
    resume: bool = False
    data: Path | None = None
    split: str | None = None
    epochs: int = 2
    space: SpaceConfig = field(default_factory=SpaceConfig)
    runs_dir: Path = Path("runs")
    heartbeat_s: float = 5.0
    stale_after_s: float = 60.0
    warm_start: bool = True  # begin with the largest uniform candidates that fit, then their ladder below
    allocate: bool = False  # and with integer-program allocations from the teacher's measured sensitivity
    worker_memory_mb: float = TRIAL_MEMORY_BYTES / 2**20  # declared to Ray, enforced per worker
    gpus_per_worker: float = 0.0  # declared to Ray; above 0 workers fine-tune on CUDA
    max_screened_per_trial: int = 500  # over-budget candidates told per requested trial, then give up
    chunk_ms: float | None = None  # a streaming search: latency (and its budget) per chunk of this length
    fidelity: Fidelity = field(default_factory=Fidelity)  # screening epochs first, the best promoted
    probe_every_s: float = PROBE_INTERVAL_S  # screen at the device's speed probed this often; 0: never

    def __post_init__(self) -> None:
        for name in ("trials", "workers", "epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"--{name} must be a whole number >= 1, got {value!r}")
        if not (math.isfinite(self.worker_memory_mb) and self.worker_memory_mb > 0):
            raise ConfigError(f"--worker-memory-mb must be a positive number, got {self.worker_memory_mb}")
        if not (_is_number(self.gpus_per_worker) and self.gpus_per_worker >= 0):
            raise ConfigError(
                "--gpus-per-worker must be a number >= 0 (a fraction shares a GPU), "
                f"got {self.gpus_per_worker!r}"
            )
        if not self.stale_after_s >= 2 * self.heartbeat_s:  # also refuses NaN
            raise ConfigError(
                f"--stale-after-s must be at least {2 * self.heartbeat_s:g} s (two heartbeats), "
                f"got {self.stale_after_s}"
            )
        if not (_is_number(self.probe_every_s) and self.probe_every_s >= 0):
            raise ConfigError(
                f"--probe-every-s must be seconds >= 0 (0: never probe), got {self.probe_every_s!r}"
            )
        if self.chunk_ms is not None and not (_is_number(self.chunk_ms) and 5 <= self.chunk_ms <= 1000):
            raise ConfigError(f"--chunk-ms must be between 5 and 1000 ms, got {self.chunk_ms!r}")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"sampler {self.sampler!r}: use one of {', '.join(SAMPLERS)}")
        if not self.study or any(c in self.study for c in "/\\") or self.study.startswith("."):
            raise ConfigError(
                f"study name {self.study!r}: use letters, digits, '-' or '_' (it names a folder)"
            )

    @property
    def folder(self) -> Path:
        """The study's own folder: its SQLite or journal file's, else ``runs_dir/study``."""
        return study_folder(self.storage) or self.runs_dir / self.study

    def chunk_samples(self, sample_rate: int) -> int | None:
        """Samples per chunk of a streaming search at the teacher's rate (None: whole clips)."""
        return None if self.chunk_ms is None else round(self.chunk_ms * sample_rate / 1000)

    def trial_dir(self, number: int) -> Path:
        return self.runs_dir / self.study / "trials" / f"{number:05d}"

    def resume_hint(self) -> str:
        """The command that continues this search, as it must be typed."""
        parts = [
            "paretone search",
            f"--teacher {self.teacher}",
            f"--study {self.study}",
            f"--storage {self.storage}",
            f"--trials {self.trials}",
            *self.budget.flags(),
            *([f"--chunk-ms {self.chunk_ms:g}"] if self.chunk_ms is not None else []),
            *([f"--gpus-per-worker {self.gpus_per_worker:g}"] if self.gpus_per_worker else []),
            *self.fidelity.flags(),
            *([f"--probe-every-s {self.probe_every_s:g}"] if self.probe_every_s != PROBE_INTERVAL_S else []),
            "--resume",
        ]
        return " ".join(parts)


@dataclass(frozen=True)
class SearchProgress:
    """What the search reports after each event (for a progress bar or a log line)."""

    finished: int
    trials: int
    running: int
    failed: int
    screened: int
    front: int
    best_score: float | None


@dataclass(frozen=True)
class SearchSummary:
    study: str
    storage: str
    fine_tuned: int  # at any fidelity
    failed: int
    screened: int  # over budget by prediction: told to Optuna without fine-tuning
    front: int
    best_score: float | None  # the best feasible validation metric
    budget: ResolvedBudget
    seconds: float
    front_origins: dict[str, int] = field(default_factory=dict)  # front members by what proposed them
    most_sensitive: tuple[str, ...] = ()  # the teacher's most sensitive single changes (allocate)
    allocations: int | None = None  # allocation warm starts of the study (None: not allocating)
    # allocate's set-up, in the driver before any trial: measuring (or reading) the sensitivity,
    # then the integer programs (one per front-end choice and budget level)
    sensitivity_seconds: float = 0.0
    allocation_seconds: float = 0.0
    driver_seconds: float = 0.0  # the driver loop's own time: all but waiting on workers
    partial_fidelity: int = 0  # fine-tuned for the screening epochs only, not promoted (not on fronts)
    speed: SpeedLog = field(default_factory=SpeedLog)  # the device's speed probes while screening


Status = Callable[[SearchProgress], None]
