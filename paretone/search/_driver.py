"""The search driver: asks Optuna for candidates, predicts their cost, fine-tunes on Ray, tells.

One driver process does every ``ask`` and ``tell`` (so SQLite is safe); Ray workers only compute.
Candidates whose predicted latency or memory breaks the budget are never fine-tuned: the driver
measures their accuracy before fine-tuning (seconds) and tells them as infeasible. The driver
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
from paretone.errors import ConfigError
from paretone.evaluators import TrialEvaluator
from paretone.hw_models import LatencyModel, MemoryModel, model_kernels, recipe_kernels
from paretone.models import load_model
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
    complete: int
    failed: int
    infeasible: int
    front: int
    best_feasible_accuracy: float | None
    budget_ms: float
    seconds: float


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
        teacher = load_model(settings.teacher).model  # cheap: the data is loaded once inputs are valid
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
        self.evaluator = TrialEvaluator(settings.teacher, data=settings.data, split=settings.split)

    # -- set-up ------------------------------------------------------------------------------

    def _check_reachable(self) -> None:
        smallest = min(
            self.latency.predict(
                recipe_kernels(self.teacher_config, self.space.recipe(self.space.uniform(0.0, f)))
            ).latency_ms
            for f in ("float", "w8a8", "w4", "w8", "w2")
        )
        if self.budget_ms < smallest:
            raise ConfigError(
                f"latency budget {self.budget_ms:.3f} ms is unreachable: the smallest candidate of the "
                f"space is predicted at {smallest:.3f} ms on {self.device} "
                f"(teacher {self.teacher_latency_ms:.3f} ms); raise the budget"
            )

    def _stamp_or_check_study(self) -> None:
        identity = {"teacher": str(self.settings.teacher.resolve()), "space": self.space.to_dict()}
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
            return
        stored = attrs["paretone"]
        if stored.get("teacher") != identity["teacher"] or stored.get("space") != identity["space"]:
            raise ConfigError(
                f"study {self.settings.study!r} was started with another teacher or search space; "
                "resume it with the same --teacher and space settings, or start a new --study"
            )

    # -- bookkeeping -------------------------------------------------------------------------

    def finished(self) -> int:
        """COMPLETE trials plus FAIL trials not retried: what ``--trials`` counts."""
        return sum(
            1
            for t in self.study.get_trials(deepcopy=False)
            if t.state == TrialState.COMPLETE
            or (t.state == TrialState.FAIL and not t.user_attrs.get("retried"))
        )

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
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        front = pareto_front(complete)
        best = max((t.values[0] for t in complete if feasible(t)), default=None)
        self.status(
            {
                "finished": self.finished(),
                "trials": self.settings.trials,
                "running": running,
                "failed": sum(1 for t in trials if t.state == TrialState.FAIL),
                "infeasible": sum(1 for t in complete if not feasible(t)),
                "front": len(front),
                "best_feasible_accuracy": best,
            }
        )

    # -- one candidate -----------------------------------------------------------------------

    def _launch(self, worker: Any) -> tuple[Trial, Any, tuple[float, float]] | None:
        """Ask, predict, and either fine-tune on ``worker`` or tell at once as infeasible."""
        trial = self.study.ask(self.space.distributions())
        recipe = self.space.recipe(trial.params)
        kernels = recipe_kernels(self.teacher_config, recipe)
        latency = self.latency.predict(kernels).require_complete(self.device)
        memory = self.memory.predict(kernels)
        memory_bytes = float(memory.peak_bytes if memory.peak_bytes is not None else memory.model_bytes)
        costs = (latency.latency_ms, memory_bytes)
        constraints = self.settings.budget.constraints(latency.latency_ms, self.budget_ms, memory_bytes)
        epochs = self.space.epochs_for(trial.params, self.settings.epochs)
        for key, value in {
            "recipe": recipe.to_dict(),
            "predicted_latency_ms": latency.latency_ms,
            "predicted_model_bytes": memory.model_bytes,
            "predicted_peak_bytes": memory.peak_bytes,
            "predicted_macs": sum(k.macs for k in kernels),
            "predicted_params": sum(k.params for k in kernels),
            "constraints": constraints,
            "epochs": epochs,
            "heartbeat": time.time(),
        }.items():
            trial.set_user_attr(key, value)
        if any(c > 0 for c in constraints):
            accuracy = self.evaluator.untuned_accuracy(recipe.to_dict())
            trial.set_user_attr("fine_tuned", False)
            self.study.tell(trial, [accuracy, *costs])
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
                while idle and self.finished() + len(running) < self.settings.trials:
                    launched = self._launch(idle[-1])
                    if launched is not None:
                        running[launched[1]] = (launched[0], idle.pop(), launched[2])
                    self._report(len(running))
                if not running:
                    if self.finished() >= self.settings.trials:
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
        trials = self.study.get_trials(deepcopy=False)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        best = max((t.values[0] for t in complete if feasible(t)), default=None)
        return SearchSummary(
            study=self.settings.study,
            storage=self.settings.storage,
            complete=len(complete),
            failed=sum(1 for t in trials if t.state == TrialState.FAIL),
            infeasible=sum(1 for t in complete if not feasible(t)),
            front=len(pareto_front(complete)),
            best_feasible_accuracy=best,
            budget_ms=self.budget_ms,
            seconds=seconds,
        )
