"""Which front members ``pick`` may ship: the budget in force and the candidates predicted within it.

The budget is the study's own unless ``pick`` is given a measured limit (``--latency-limit-ms``, or
``--latency-limit-fraction`` of the teacher measured beside each candidate) or other bounds. The
choice is made on predictions; the promise rests on the measurement (see ``_pick``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from paretone.errors import ConfigError
from paretone.search import (
    Budget,
    Candidate,
    ResolvedBudget,
    StudyInfo,
    candidates,
    load_study,
    pareto_candidates,
    study_folder,
    within,
)


@dataclass(frozen=True)
class PickSettings:
    study: str
    storage: str
    out: Path
    latency_limit_ms: float | None = None  # measured ms; None (and no fraction): the study's budget
    latency_limit_fraction: float | None = None  # of the teacher, measured beside each candidate
    memory_budget_mb: float | None = None  # predicted peak memory
    size_budget_mb: float | None = None  # predicted ONNX file size
    final_epochs: int = 0  # 0: ship the trial's own fine-tuned weights
    attempts: int = 3  # candidates to export and measure before giving up
    threads: int = 1
    passes: int = 7
    runs: int = 50
    overwrite: bool = False
    profile_dir: Path = Path("runs") / "devices"  # the study's device profile: a speed probe at pick

    def __post_init__(self) -> None:
        for flag, value in (
            ("--latency-limit-ms", self.latency_limit_ms),
            ("--memory-budget-mb", self.memory_budget_mb),
            ("--size-budget-mb", self.size_budget_mb),
        ):
            if value is not None and (isinstance(value, bool) or not (math.isfinite(value) and value > 0)):
                raise ConfigError(f"{flag} must be a positive number, got {value!r}")
        fraction = self.latency_limit_fraction
        if fraction is not None and not (math.isfinite(fraction) and 0 < fraction <= 1):
            raise ConfigError(f"--latency-limit-fraction must be in (0, 1], got {fraction}")
        if self.latency_limit_ms is not None and fraction is not None:
            raise ConfigError("give --latency-limit-ms or --latency-limit-fraction, not both")
        if self.final_epochs < 0 or self.attempts < 1 or self.threads < 1 or self.passes < 1 or self.runs < 1:
            raise ConfigError("--final-epochs must be >= 0; --attempts, --threads, passes and runs >= 1")

    @property
    def folder(self) -> Path | None:
        return study_folder(self.storage)


def pick_budget(settings: PickSettings, info: StudyInfo) -> ResolvedBudget:
    """The given limits over the study's own budget, resolved against the study's teacher."""
    searched = info.budget
    latency_given = settings.latency_limit_ms is not None or settings.latency_limit_fraction is not None
    given = Budget(
        latency_ms=settings.latency_limit_ms if latency_given else searched.given.latency_ms,
        latency_fraction=settings.latency_limit_fraction
        if latency_given
        else searched.given.latency_fraction,
        memory_mb=settings.memory_budget_mb if settings.memory_budget_mb is not None else searched.memory_mb,
        size_mb=settings.size_budget_mb if settings.size_budget_mb is not None else searched.size_mb,
    )
    if given == searched.given:
        return searched
    if given.fraction is not None and not math.isfinite(searched.teacher_latency_ms):
        raise ConfigError(f"study {settings.study!r} lacks the teacher's latency; pass --latency-limit-ms")
    return given.resolve(searched.teacher_latency_ms)


@dataclass(frozen=True)
class Selection:
    fitting: list[Candidate]  # front members predicted within the budget, best first
    front: list[Candidate]
    info: StudyInfo
    budget: ResolvedBudget


def select(settings: PickSettings) -> Selection:
    """ConfigError naming the nearest options when no front member fits."""
    study = load_study(settings.study, settings.storage)
    info = StudyInfo.read(study, settings.folder)
    budget = pick_budget(settings, info)
    pool = candidates(study, settings.folder)
    if not pool:
        raise ConfigError(
            f"study {settings.study!r} has no fine-tuned trial yet; run or resume `paretone search`"
        )
    front = pareto_candidates(pool)
    fitting = within(front, latency_ms=budget.latency_ms, memory_mb=budget.memory_mb, size_mb=budget.size_mb)
    if not fitting:
        nearest = ", ".join(
            f"trial {c.trial}: {c.latency_ms:.3f} ms, {c.peak_bytes / 1e6:.1f} MB memory, "
            f"{c.model_bytes / 1e6:.2f} MB file, {c.score:.1%}"
            for c in front[:3]
        )
        raise ConfigError(
            f"no Pareto-optimal model of study {settings.study!r} is predicted within {budget.describe()}; "
            f"the fastest are {nearest}. Raise the budget, or search at this one "
            "(`paretone search --latency-budget-ms ...` with a new --study)"
        )
    return Selection(fitting, front, info, budget)
