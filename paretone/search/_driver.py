"""The search driver: asks Optuna for candidates, predicts their cost, fine-tunes on Ray, tells.

One driver process does every ``ask`` and ``tell`` (so SQLite is safe); Ray workers only compute.
Candidates whose predicted latency or memory breaks the budget are never fine-tuned: the driver
tells them at once (predicted costs, accuracy 0, constraints violated) and Optuna's constrained
samplers rank them by how far over budget they are. The driver
stamps a heartbeat on every trial it runs; a later ``--resume`` fails the trials a dead driver left
RUNNING (stale heartbeat) and retries each once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optuna.trial import FrozenTrial, Trial, TrialState

from paretone import __version__
from paretone.compress import Recipe
from paretone.errors import ConfigError
from paretone.evaluators import resolve_splits
from paretone.hw_models import (
    Kernel,
    LatencyModel,
    MemoryModel,
    MemoryPrediction,
    model_kernels,
    recipe_kernels,
)
from paretone.search._budget import Budget
from paretone.search._study import (
    feasible,
    make_sampler,
    open_study,
    pareto_front,
    set_running_attr,
)
from paretone.search._workers import WorkerSetup, failure_reason, start_ray, start_worker
from paretone.spaces import SearchSpace, SpaceConfig

Status = Callable[[dict[str, Any]], None]
MAX_WORKER_DEATHS = 5


@dataclass(frozen=True)
class SearchSettings:
    teacher: Path
    study: str
    storage: str
    trials: int = 12
    budget: Budget = field(default_factory=Budget)
    workers: int = 1
    ray_address: str | None = None
    sampler: str = "nsga2"
    seed: int = 0
    resume: bool = False
    data: Path | None = None
    split: str | None = None
    epochs: int = 2
    space: SpaceConfig = field(default_factory=SpaceConfig)
    runs_dir: Path = Path("runs")
    heartbeat_s: float = 5.0
    stale_after_s: float = 60.0
    warm_start: bool = True  # begin with the largest uniform candidates that fit the budget
    max_screened_per_trial: int = 500  # over-budget candidates told per requested trial, then give up

    def __post_init__(self) -> None:
        if self.trials < 1 or self.workers < 1 or self.epochs < 1:
            raise ConfigError("--trials, --workers and --epochs must be >= 1")
        if not self.study or any(c in self.study for c in "/\\") or self.study.startswith("."):
            raise ConfigError(
                f"study name {self.study!r}: use letters, digits, '-' or '_' (it names a folder)"
            )


@dataclass(frozen=True)
class SearchSummary:
    study: str
    storage: str
    fine_tuned: int
    failed: int
    screened: int  # over budget by prediction: told to Optuna without fine-tuning
    front: int
    best_feasible_accuracy: float | None
    budget_ms: float
    seconds: float


def _tally(trials: list[FrozenTrial]) -> tuple[int, int]:
    """(finished, screened): ``finished`` is what ``--trials`` counts, fine-tuned trials plus FAIL
    trials not retried. Candidates ``screened`` out by their predicted cost (COMPLETE, not
    fine-tuned) cost milliseconds and do not count, so a tight budget does not spend the count."""
    finished = screened = 0
    for t in trials:
        if t.state == TrialState.COMPLETE:
            finished += bool(t.user_attrs.get("fine_tuned"))
            screened += not t.user_attrs.get("fine_tuned")
        elif t.state == TrialState.FAIL:
            finished += not t.user_attrs.get("retried")
    return finished, screened


def _memory_bytes(memory: MemoryPrediction) -> float:
    """The memory objective: peak working memory if the profile measured it, else stored bytes."""
    return float(memory.peak_bytes if memory.peak_bytes is not None else memory.model_bytes)


class Driver:
    def __init__(
        self,
        settings: SearchSettings,
        *,
        latency: LatencyModel,
        memory: MemoryModel,
        device: str,
        status: Status | None = None,
    ) -> None:
        self.settings, self.latency, self.memory, self.device = settings, latency, memory, device
        self.status = status or (lambda _: None)
        loaded, _ = resolve_splits(settings.teacher, data=settings.data, split=settings.split)  # no audio
        teacher = loaded.model
        self.teacher_config = teacher.config
        self.space = SearchSpace.build(teacher.structure(), settings.space)
        teacher_kernels = model_kernels(teacher.config)
        self.teacher_latency_ms = self.latency.predict(teacher_kernels).require_complete(device).latency_ms
        self.budget_ms = settings.budget.latency_ms_for(self.teacher_latency_ms)
        self._check_reachable()
        self.study = open_study(
            settings.study,
            storage=settings.storage,
            sampler=make_sampler(settings.sampler, settings.seed),
            resume=settings.resume,
        )
        self._stamp_or_check_study()

    # -- set-up ------------------------------------------------------------------------------

    def _check_reachable(self) -> None:
        smallest = min(
            self._costs(self.space.recipe(self.space.uniform(0.0, f)))[1]
            for f in ("float", "w8a8", "w4", "w8", "w2")
        )
        if self.budget_ms < smallest:
            raise ConfigError(
                f"latency budget {self.budget_ms:.3f} ms is unreachable: the smallest candidate of the "
                f"space is predicted at {smallest:.3f} ms on {self.device} "
                f"(teacher {self.teacher_latency_ms:.3f} ms); raise the budget"
            )

    def _warm_start(self) -> list[dict[str, Any]]:
        """Per format (w8a8, float, w4), the uniform candidate keeping the most that fits the budget.

        Drawn at random, almost every candidate breaks a tight budget (slow low-bit formats,
        little pruning); starting from feasible points lets the sampler search around them
        instead of screening hundreds of proposals first. Predictions only: microseconds.
        """
        starts = []
        for fmt in ("w8a8", "float", "w4"):
            for keep in (1 - i / 16 for i in range(16)):
                params = self.space.uniform(keep, fmt)
                if self._costs(self.space.recipe(params))[3] and params not in starts:
                    starts.append(params)
                    break
        return starts

    def _costs(self, recipe: Recipe) -> tuple[list[Kernel], float, MemoryPrediction, bool]:
        """(kernels, predicted latency ms, memory prediction, within budget) of a candidate."""
        kernels = recipe_kernels(self.teacher_config, recipe)
        latency_ms = self.latency.predict(kernels).require_complete(self.device).latency_ms
        memory = self.memory.predict(kernels)
        constraints = self.settings.budget.constraints(latency_ms, self.budget_ms, _memory_bytes(memory))
        return kernels, latency_ms, memory, all(c <= 0 for c in constraints.values())

    def _stamp_or_check_study(self) -> None:
        space = {k: v for k, v in self.space.to_dict().items() if k != "paretone_version"}
        identity = {"teacher": str(self.settings.teacher.resolve()), "space": space}
        identity = json.loads(json.dumps(identity))  # as stored: tuples become lists
        attrs = self.study.user_attrs
        if "paretone" not in attrs:
            self.study.set_user_attr("paretone", {"version": __version__, **identity})
            self.study.set_user_attr(
                "budget", {**self.settings.budget.to_dict(), "latency_ms": self.budget_ms}
            )
            self.study.set_user_attr("device", self.device)
            self.study.set_user_attr("teacher_predicted_latency_ms", self.teacher_latency_ms)
            self.study.set_user_attr("objectives", ["accuracy", "latency_ms", "memory_bytes"])
            if self.settings.warm_start:
                for params in self._warm_start():
                    self.study.enqueue_trial(params, user_attrs={"warm_start": True})
            return
        stored = attrs["paretone"]
        if stored.get("teacher") != identity["teacher"] or stored.get("space") != identity["space"]:
            raise ConfigError(
                f"study {self.settings.study!r} was started with another teacher or search space; "
                "resume it with the same --teacher and space settings, or start a new --study"
            )
        budget = attrs.get("budget", {})
        if (
            abs(float(budget.get("latency_ms", self.budget_ms)) - self.budget_ms) > 1e-9
            or budget.get("memory_mb") != self.settings.budget.memory_mb
        ):
            raise ConfigError(
                f"study {self.settings.study!r} was started with budget {budget}; resume it with the same "
                "--latency-budget-* and --memory-budget-mb, or start a new --study"
            )

    # -- bookkeeping -------------------------------------------------------------------------

    def counts(self) -> tuple[int, int]:
        """(finished, screened) trials in storage, in one pass (see ``_tally``)."""
        return _tally(self.study.get_trials(deepcopy=False))

    def finished(self) -> int:
        return self.counts()[0]

    def _fail(self, trial: Trial | FrozenTrial, reason: str, *, retry: bool) -> None:
        """End a RUNNING trial as FAIL with ``reason``; retry it once (never a retry of a retry)."""
        retry = retry and "retry_of" not in trial.user_attrs
        set_attr = (
            trial.set_user_attr
            if isinstance(trial, Trial)
            else (lambda k, v: set_running_attr(self.study, trial, k, v))
        )
        set_attr("fail_reason", reason)
        set_attr("retried", retry)
        self.study.tell(trial.number, state=TrialState.FAIL)
        if retry:
            self.study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": trial.number})

    def recover_stale(self) -> int:
        """Fail (and retry once) RUNNING trials whose heartbeat is older than ``stale_after_s``."""
        now, recovered = time.time(), 0
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            start = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
            silent = now - float(trial.user_attrs.get("heartbeat", start))
            if silent >= self.settings.stale_after_s:
                self._fail(trial, f"no heartbeat for {silent:.0f} s: its driver or worker died", retry=True)
                recovered += 1
        return recovered

    def _report(self, running: int) -> None:
        trials = self.study.get_trials(deepcopy=False)
        summary = self._summarize(trials, seconds=0.0)
        self.status(
            {
                "finished": _tally(trials)[0],
                "trials": self.settings.trials,
                "running": running,
                "failed": summary.failed,
                "screened": summary.screened,
                "front": summary.front,
                "best_feasible_accuracy": summary.best_feasible_accuracy,
            }
        )

    # -- one candidate -----------------------------------------------------------------------

    def _launch(self, worker: Any) -> tuple[Trial, Any, tuple[float, float]] | None:
        """Ask, predict, and either fine-tune on ``worker`` or tell at once as infeasible."""
        trial = self.study.ask(self.space.distributions())
        recipe = self.space.recipe(trial.params)
        kernels, latency_ms, memory, _ = self._costs(recipe)
        costs = (latency_ms, _memory_bytes(memory))
        constraints = self.settings.budget.constraints(latency_ms, self.budget_ms, costs[1])
        epochs = self.space.epochs_for(trial.params, self.settings.epochs)
        for key, value in {
            "recipe": recipe.to_dict(),
            "predicted": {  # one attribute: every storage write is a transaction
                "latency_ms": latency_ms,
                "model_bytes": memory.model_bytes,
                "peak_bytes": memory.peak_bytes,
                "macs": sum(k.macs for k in kernels),
                "params": sum(k.params for k in kernels),
            },
            "epochs": epochs,
            "heartbeat": time.time(),
        }.items():
            trial.set_user_attr(key, value)
        for name, value in constraints.items():
            trial.set_constraint(name, value)
        if any(c > 0 for c in constraints.values()):  # screened: told at once, never fine-tuned
            trial.set_user_attr("fine_tuned", False)
            self.study.tell(trial, [0.0, *costs])  # accuracy unknown; the constraints rank it
            return None
        out = self.settings.runs_dir / self.settings.study / "trials" / f"{trial.number:05d}"
        return trial, worker.fine_tune.remote(recipe.to_dict(), epochs, str(out)), costs

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> SearchSummary:
        import ray

        started = time.perf_counter()
        started_ray = start_ray(self.settings.ray_address, self.settings.workers)
        running: dict[Any, tuple[Trial, Any, tuple[float, float]]] = {}
        try:
            self.recover_stale()
            setup = WorkerSetup(
                str(self.settings.teacher),
                None if self.settings.data is None else str(self.settings.data),
                self.settings.split,
            )
            idle = [start_worker(setup) for _ in range(self.settings.workers)]
            deaths = 0
            while True:
                finished, screened = self.counts()
                while idle and finished + len(running) < self.settings.trials:
                    if screened >= self.settings.max_screened_per_trial * self.settings.trials:
                        raise ConfigError(
                            f"{screened} candidates broke the budget ({self.budget_ms:.3f} ms"
                            f"{'' if self.settings.budget.memory_mb is None else ', memory'}) while "
                            f"{finished} fitted it; finished trials are kept: raise the budget or "
                            "narrow the space (--config [space])"
                        )
                    launched = self._launch(idle[-1])
                    if launched is None:
                        screened += 1
                        if screened % 100 == 0:
                            self._report(len(running))
                        continue
                    running[launched[1]] = (launched[0], idle.pop(), launched[2])
                    self._report(len(running))
                if not running:
                    if finished >= self.settings.trials:
                        break
                    continue
                done, _ = ray.wait(list(running), num_returns=1, timeout=self.settings.heartbeat_s)
                for future in done:
                    trial, worker, costs = running.pop(future)
                    try:
                        metrics = ray.get(future)
                    except Exception as exc:
                        reason, worker_died = failure_reason(exc)
                        self._fail(trial, reason, retry=worker_died)
                        if worker_died:
                            deaths += 1
                            if deaths > MAX_WORKER_DEATHS:
                                raise ConfigError(
                                    f"{deaths} search workers died (last: {reason}); see ray logs"
                                ) from None
                            worker = start_worker(setup)
                        idle.append(worker)
                        continue
                    for key, value in metrics.items():
                        trial.set_user_attr(key, value)
                    trial.set_user_attr("fine_tuned", True)
                    self.study.tell(trial, [metrics["accuracy"], *costs])
                    idle.append(worker)
                now = time.time()
                for trial, _, _ in running.values():
                    trial.set_user_attr("heartbeat", now)
                self._report(len(running))
        except KeyboardInterrupt:
            for trial, _, _ in running.values():
                self._fail(trial, "interrupted by the user", retry=True)
            raise
        finally:
            if started_ray:
                ray.shutdown()
        return self.summary(time.perf_counter() - started)

    def summary(self, seconds: float) -> SearchSummary:
        return self._summarize(self.study.get_trials(deepcopy=False), seconds)

    def _summarize(self, trials: list[FrozenTrial], seconds: float) -> SearchSummary:
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        best = max((t.values[0] for t in complete if feasible(t)), default=None)
        return SearchSummary(
            study=self.settings.study,
            storage=self.settings.storage,
            fine_tuned=sum(1 for t in complete if t.user_attrs.get("fine_tuned")),
            failed=sum(1 for t in trials if t.state == TrialState.FAIL),
            screened=sum(1 for t in complete if not t.user_attrs.get("fine_tuned")),
            front=len(pareto_front(complete)),
            best_feasible_accuracy=best,
            budget_ms=self.budget_ms,
            seconds=seconds,
        )
