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
import math
import time
from collections.abc import Callable, Collection
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
from paretone.search._front import Candidate, pareto_candidates
from paretone.search._study import (
    feasible,
    make_sampler,
    open_study,
    set_running_attr,
)
from paretone.search._workers import (
    TRIAL_MEMORY_BYTES,
    WorkerSetup,
    failure_note,
    failure_reason,
    start_ray,
    start_worker,
)
from paretone.spaces import SearchSpace, SpaceConfig

Status = Callable[[dict[str, Any]], None]
Running = tuple[Trial, Any, tuple[float, float]]  # (trial, worker, predicted (latency ms, memory bytes))
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
    worker_memory_mb: float = TRIAL_MEMORY_BYTES / 2**20  # declared to Ray, enforced per worker
    max_screened_per_trial: int = 500  # over-budget candidates told per requested trial, then give up

    def __post_init__(self) -> None:
        if self.trials < 1 or self.workers < 1 or self.epochs < 1:
            raise ConfigError("--trials, --workers and --epochs must be >= 1")
        if not (math.isfinite(self.worker_memory_mb) and self.worker_memory_mb > 0):
            raise ConfigError(f"--worker-memory-mb must be a positive number, got {self.worker_memory_mb}")
        if not self.stale_after_s >= 2 * self.heartbeat_s:  # also refuses NaN
            raise ConfigError(
                f"--stale-after-s must be at least {2 * self.heartbeat_s:g} s (two heartbeats), "
                f"got {self.stale_after_s}"
            )
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
        self._last_beat = 0.0
        self._warm_starts_done = False
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
            self._costs(self.space.recipe(self.space.uniform(0.0, f, fe)))[1]
            for f in ("float", "w8a8", "w4", "w8", "w2")
            for fe in self.space.front_end_choices()
        )
        if self.budget_ms < smallest:
            raise ConfigError(
                f"latency budget {self.budget_ms:.3f} ms is unreachable: the smallest candidate of the "
                f"space is predicted at {smallest:.3f} ms on {self.device} "
                f"(teacher {self.teacher_latency_ms:.3f} ms); raise the budget"
            )

    def _warm_start(self) -> list[dict[str, Any]]:
        """Per format (w8a8, float, w4), the uniform candidate keeping the most that fits the budget
        (with the finest front-end that lets it fit).

        Drawn at random, almost every candidate breaks a tight budget (slow low-bit formats,
        little pruning); starting from feasible points lets the sampler search around them
        instead of screening hundreds of proposals first. Predictions only: microseconds.
        """
        starts = []
        for fmt in ("w8a8", "float", "w4"):
            params = self._largest_fitting(fmt)
            if params is not None and params not in starts:
                starts.append(params)
        return starts

    def _enqueue_warm_start(self) -> None:
        """Enqueue the next unused warm start, unless a trial (a retry) is already waiting: Optuna
        serves waiting trials first come, first served, and a retry must not queue behind them."""
        if self._warm_starts_done or self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            return
        trials = self.study.get_trials(deepcopy=False)
        used = {t.user_attrs["warm_start_index"] for t in trials if "warm_start_index" in t.user_attrs}
        for index, params in enumerate(self.study.user_attrs.get("warm_starts", [])):
            if index not in used:
                self.study.enqueue_trial(params, user_attrs={"warm_start": True, "warm_start_index": index})
                return
        self._warm_starts_done = True

    def _largest_fitting(self, fmt: str) -> dict[str, Any] | None:
        for keep in (1 - i / 16 for i in range(16)):
            for front_end in self.space.front_end_choices():
                params = self.space.uniform(keep, fmt, front_end)
                if self._costs(self.space.recipe(params))[3]:
                    return params
        return None

    def _costs(self, recipe: Recipe) -> tuple[list[Kernel], float, MemoryPrediction, bool]:
        """(kernels, predicted latency ms, memory prediction, within budget) of a candidate."""
        kernels = recipe_kernels(self.teacher_config, recipe)
        latency_ms = self.latency.predict(kernels).require_complete(self.device).latency_ms
        memory = self.memory.predict(kernels)
        constraints = self.settings.budget.constraints(
            latency_ms, self.budget_ms, _memory_bytes(memory), memory.model_bytes
        )
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
            # kept in the study, enqueued one at a time (``_enqueue_warm_start``): retries go first
            self.study.set_user_attr("warm_starts", self._warm_start() if self.settings.warm_start else [])
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
            or budget.get("size_mb") != self.settings.budget.size_mb
        ):
            raise ConfigError(
                f"study {self.settings.study!r} was started with budget {budget}; resume it with the same "
                "--latency-budget-*, --memory-budget-mb and --size-budget-mb, or start a new --study"
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

    def recover_stale(self, ours: Collection[int] = ()) -> int:
        """Fail (and retry once) RUNNING trials, other than ``ours``, whose heartbeat is older than
        ``stale_after_s``; return how many others are still alive (run by another driver)."""
        now, alive = time.time(), 0
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if trial.number in ours:
                continue
            start = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
            silent = now - float(trial.user_attrs.get("heartbeat", start))
            if silent >= self.settings.stale_after_s:
                self._fail(trial, f"no heartbeat for {silent:.0f} s: its driver or worker died", retry=True)
            else:
                alive += 1
        return alive

    def _beat(self, running: dict[Any, Running], *, force: bool = False) -> None:
        """Stamp the heartbeat on this driver's running trials (at most every ``heartbeat_s``)."""
        now = time.time()
        if force or now - self._last_beat >= self.settings.heartbeat_s:
            for trial, _, _ in running.values():
                trial.set_user_attr("heartbeat", now)
            self._last_beat = now

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
        constraints = self.settings.budget.constraints(
            latency_ms, self.budget_ms, costs[1], memory.model_bytes
        )
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
        out = self._trial_dir(trial.number)
        return trial, worker.fine_tune.remote(recipe.to_dict(), epochs, str(out)), costs

    def _trial_dir(self, number: int) -> Path:
        return self.settings.runs_dir / self.settings.study / "trials" / f"{number:05d}"

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> SearchSummary:
        import ray

        started = time.perf_counter()
        started_ray = start_ray(self.settings.ray_address, self.settings.workers)
        running: dict[Any, Running] = {}
        try:
            self.recover_stale()
            setup = WorkerSetup(
                str(self.settings.teacher),
                None if self.settings.data is None else str(self.settings.data),
                self.settings.split,
                memory_bytes=int(self.settings.worker_memory_mb * 2**20),
            )
            idle = [start_worker(setup) for _ in range(self.settings.workers)]
            deaths = 0
            while True:
                # RUNNING trials of another driver (or of a dead one, until they go stale) count as
                # in flight: concurrent drivers then share the count instead of overshooting it.
                elsewhere = self.recover_stale({t.number for t, _, _ in running.values()})
                finished, screened = self.counts()
                while idle and finished + len(running) + elsewhere < self.settings.trials:
                    if screened >= self.settings.max_screened_per_trial * self.settings.trials:
                        raise ConfigError(
                            f"{screened} candidates broke the budget ({self.budget_ms:.3f} ms"
                            f"{'' if self.settings.budget.memory_mb is None else ', memory'}"
                            f"{'' if self.settings.budget.size_mb is None else ', size'}) while "
                            f"{finished} fitted it; finished trials are kept: raise the budget or "
                            "narrow the space (--config [space])"
                        )
                    self._enqueue_warm_start()
                    launched = self._launch(idle[-1])
                    if launched is None:
                        screened += 1
                        self._beat(running)  # screening can take a while: stay visibly alive
                        if screened % 100 == 0:
                            self._report(len(running))
                        continue
                    running[launched[1]] = (launched[0], idle.pop(), launched[2])
                    self._report(len(running))
                if not running:
                    if finished >= self.settings.trials:
                        break
                    time.sleep(self.settings.heartbeat_s)  # others' trials: wait for them or staleness
                    continue
                done, _ = ray.wait(list(running), num_returns=1, timeout=self.settings.heartbeat_s)
                for future in done:
                    trial, worker, costs = running.pop(future)
                    try:
                        metrics = ray.get(future)
                    except Exception as exc:
                        reason, worker_died = failure_reason(exc)
                        # a worker that stopped itself (over its memory cap) left the reason; the
                        # same recipe would only do it again, so that trial is not retried
                        note = failure_note(self._trial_dir(trial.number)) if worker_died else None
                        self._fail(trial, note or reason, retry=worker_died and note is None)
                        if worker_died:
                            deaths += note is None
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
                self._beat(running, force=True)
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
            front=len(pareto_candidates([Candidate.from_trial(t) for t in complete if feasible(t)])),
            best_feasible_accuracy=best,
            budget_ms=self.budget_ms,
            seconds=seconds,
        )
