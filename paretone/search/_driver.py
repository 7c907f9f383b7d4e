"""The search loop: ask Optuna for candidates, screen them by predicted cost, fine-tune on Ray, tell.

One driver process does every ``ask`` and ``tell`` (so SQLite is safe); Ray workers only compute.
Candidates whose predicted cost breaks the budget are never fine-tuned: the driver tells them at
once (predicted costs, score 0, constraints violated) and Optuna's constrained samplers rank them
by how far over budget they are. Heartbeats and stale-trial recovery are ``Liveness``'s; costs
are ``CostModel``'s (at the speed ``SpeedWatch`` probes); the warm starts' order
``WarmStartQueue``'s; what the trials add up to ``StudyState``'s; attributes are written through
``_attrs``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from optuna.trial import Trial

from paretone.errors import ConfigError
from paretone.evaluators import SensitivityTable, TeacherContext, load_context, resolve_splits
from paretone.hw_models import LatencyModel, MemoryModel
from paretone.search._allocation import allocate, describe, sensitivity_for
from paretone.search._attrs import (
    ALLOCATION,
    Objectives,
    Predicted,
    StudyInfo,
    WarmStart,
    invalid_attrs,
    proposal_attrs,
    result_attrs,
    screen_score,
    screened_attrs,
    screening_attrs,
    set_attrs,
)
from paretone.search._costs import CostModel, InvalidCandidate
from paretone.search._fidelity import Screened
from paretone.search._liveness import Liveness
from paretone.search._settings import SearchProgress, SearchSettings, SearchSummary, Status
from paretone.search._speed import SpeedWatch
from paretone.search._study import check_resumable, make_sampler, open_study
from paretone.search._tally import StudyState, tally
from paretone.search._warm_starts import WarmStartQueue
from paretone.search._workers import (
    WorkerSetup,
    check_gpus,
    failure_note,
    failure_reason,
    start_ray,
    start_worker,
)
from paretone.spaces import SearchSpace
from paretone.tasks import task_named

MAX_WORKER_DEATHS = 5


@dataclass
class _Running:
    """A feasible candidate: prepared (no worker yet), then fine-tuning on ``worker``."""

    trial: Trial
    worker: Any  # the Ray actor fine-tuning it (None while prepared)
    future: Any  # its pending result (None while prepared)
    costs: tuple[float, float]  # predicted (latency ms, peak bytes)
    recipe: dict[str, Any]
    epochs: int  # of this run: the screening epochs, or the trial's full epochs
    full_epochs: int

    @property
    def screening(self) -> bool:
        return self.epochs < self.full_epochs


def _in_flight(running: dict[Any, _Running], ready: _Running | None) -> list[Trial]:
    """This driver's RUNNING trials: fine-tuning, and the one prepared for the next free worker."""
    return [r.trial for r in running.values()] + ([ready.trial] if ready else [])


class Driver:
    def __init__(
        self,
        settings: SearchSettings,
        *,
        latency: LatencyModel,
        memory: MemoryModel,
        device: str,
        status: Status | None = None,
        sensitivity_progress: Callable[[str, int, int], None] | None = None,
        worker_factory: Callable[[WorkerSetup], Any] = start_worker,
        speed: SpeedWatch | None = None,
    ) -> None:
        """``sensitivity_progress(stage, done, total)``: how far the sensitivity measurement of
        ``allocate`` is. ``worker_factory``: a new Ray actor with ``fine_tune(recipe, epochs,
        out_dir) -> TrialResult`` (the driver's scalability benchmark passes one that sleeps).
        ``speed``: the device's speed probes, screening at the latest (None: at the calibrated
        speed, and the summary says so)."""
        self.settings, self.device = settings, device
        self.start_worker = worker_factory
        self.status = status or (lambda _: None)
        self.sensitivity_progress = sensitivity_progress
        self.sensitivity: SensitivityTable | None = None  # measured (or read) for allocations
        self.driver_seconds = 0.0  # run()'s own time in this process (all but waiting on workers)
        self._waited_s = 0.0
        self.sensitivity_seconds = self.allocation_seconds = 0.0  # allocate's set-up (a new study)
        self._context: TeacherContext | None = None  # decoded on first need (see ``context``)
        loaded, _ = resolve_splits(settings.teacher, data=settings.data, split=settings.split)  # no audio
        self.task = task_named(loaded.task)
        self.teacher_config = loaded.model.config
        self.space = SearchSpace.build(loaded.model.structure(), settings.space, teacher=loaded.model.config)
        self.chunk_samples = settings.chunk_samples(self.teacher_config.front_end.sample_rate)
        self.costs = CostModel(
            self.teacher_config,
            latency=latency,
            memory=memory,
            device=device,
            chunk_samples=self.chunk_samples,
        )
        self.budget = settings.budget.resolve(self.costs.teacher_latency_ms)
        self.speed = speed or SpeedWatch(probe=None, not_probed="the driver was given no speed watch")
        self.costs.set_speed(self.speed.current())  # before anything is checked against the budget
        self.costs.check_reachable(self.space, self.budget)
        self.study = open_study(
            settings.study,
            storage=settings.storage,
            sampler=make_sampler(settings.sampler, settings.seed),
            resume=settings.resume,
            objective=self.task.objective,
        )
        self.liveness = Liveness(
            self.study, heartbeat_s=settings.heartbeat_s, stale_after_s=settings.stale_after_s
        )
        self.warm_starts = WarmStartQueue(self.study, folder=settings.folder)
        self._stamp_or_check_study()

    @property
    def teacher_latency_ms(self) -> float:
        return self.costs.teacher_latency_ms

    # -- set-up ------------------------------------------------------------------------------

    def info(self) -> StudyInfo:
        space = {k: v for k, v in self.space.to_dict().items() if k != "paretone_version"}
        return StudyInfo(
            self.settings.teacher,
            space,
            self.budget,
            self.device,
            self.task.name,
            chunk_samples=self.chunk_samples,
        )

    def _stamp_or_check_study(self) -> None:
        ours = self.info()
        if not self.settings.resume:
            starts = self.costs.warm_starts(self.space, self.budget) if self.settings.warm_start else []
            if self.settings.allocate:  # after the strongest uniform candidate, before the others
                starts[1:1] = [WarmStart(params, ALLOCATION) for params in self._allocations()]
            info = dataclasses.replace(ours, warm_starts=tuple(starts))
            info.write(self.study, self.settings.folder)
            return
        check_resumable(self.study, ours, self.settings)
        self.budget = StudyInfo.read(self.study, self.settings.folder).budget  # as the study resolved it

    def context(self) -> TeacherContext:
        """The teacher and its decoded audio, loaded once: for the sensitivity and for the workers
        (through Ray's object store)."""
        if self._context is None:
            settings = self.settings
            self._context = load_context(settings.teacher, data=settings.data, split=settings.split)
        return self._context

    def _allocations(self) -> list[dict[str, Any]]:
        """Points chosen by the integer program over the teacher's sensitivity (measured once per
        teacher, split and space; seconds to minutes, the audio decoded in this process)."""
        context = self.context()
        report = self.sensitivity_progress

        def advance(done: int, total: int) -> None:
            if report is not None:
                report("sensitivity", done, total)

        started = time.perf_counter()
        self.sensitivity, _ = sensitivity_for(context, self.space, progress=advance)
        solving = time.perf_counter()
        points = allocate(self.space, self.costs, self.budget, self.sensitivity)
        self.sensitivity_seconds, self.allocation_seconds = solving - started, time.perf_counter() - solving
        return points

    # -- bookkeeping -------------------------------------------------------------------------

    def counts(self) -> tuple[int, int]:
        """(finished, screened) trials in storage, in one pass (see ``tally``)."""
        return tally(self.study.get_trials(deepcopy=False))

    def finished(self) -> int:
        return self.counts()[0]

    def recover_stale(self, ours: tuple[int, ...] = ()) -> int:
        return self.liveness.recover_stale(ours)

    def _report(self, running: int) -> None:
        trials = self.study.get_trials(deepcopy=False)
        state = StudyState.of(trials)
        self.status(
            SearchProgress(
                finished=tally(trials)[0],
                trials=self.settings.trials,
                running=running,
                failed=state.failed,
                screened=state.screened,
                front=state.front,
                best_score=state.best_score,
            )
        )

    # -- one candidate -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _waiting(self) -> Iterator[None]:
        """Time spent waiting on workers (or others' trials): what the driver's own seconds exclude.
        Everything else in the loop (ask, predict, tell, storage reads, progress, heartbeats) is
        time an idle worker may be waiting on."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self._waited_s += time.perf_counter() - started

    def _propose(self) -> _Running | None:
        """Ask and predict: a feasible candidate ready to fine-tune, or None when it was told at once
        as infeasible (screened, or a point that cannot be built)."""
        trial = self.study.ask(self.space.distributions())
        recipe = self.space.recipe(trial.params)
        try:
            predicted = self.costs.cost(recipe).predicted
        except InvalidCandidate as exc:  # told as infeasible: the sampler learns to avoid such points
            set_attrs(trial, {**screened_attrs(), **invalid_attrs(str(exc))})
            worst_ms, worst_bytes = 10 * self.costs.teacher_latency_ms, 1e12  # far over every budget
            for name, value in self.budget.constraints(worst_ms, worst_bytes, worst_bytes).items():
                trial.set_constraint(name, value)
            self.study.tell(trial, Objectives(0.0, worst_ms, worst_bytes).values())
            return None
        budget = self.costs.budget_now(self.budget)
        constraints = budget.constraints(
            predicted.screened_latency_ms, predicted.peak_bytes, predicted.model_bytes
        )
        interval = predicted.latency_interval_ms
        if interval is not None and interval[0] <= budget.latency_ms < interval[1]:
            predicted = dataclasses.replace(predicted, straddles_budget=True)  # pick measures it first
        epochs = self.space.epochs_for(trial.params, self.settings.epochs)
        set_attrs(trial, proposal_attrs(recipe.to_dict(), predicted, epochs, time.time()))
        for name, value in constraints.items():
            trial.set_constraint(name, value)
        costs = (predicted.latency_ms, float(predicted.peak_bytes))  # the calibrated scale: see CostModel
        if any(c > 0 for c in constraints.values()):  # screened: told at once, never fine-tuned
            set_attrs(trial, screened_attrs())
            self.study.tell(trial, Objectives(0.0, *costs).values())  # score unknown; constraints rank it
            return None
        first = self.settings.fidelity.first_epochs(epochs)
        return _Running(trial, None, None, costs, recipe.to_dict(), first, epochs)

    def _fine_tune(self, entry: _Running, worker: Any) -> _Running:
        out = self.settings.trial_dir(entry.trial.number)
        future = worker.fine_tune.remote(entry.recipe, entry.epochs, str(out))
        return dataclasses.replace(entry, worker=worker, future=future)

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> SearchSummary:
        import ray

        started = time.perf_counter()
        started_ray = start_ray(self.settings.ray_address, self.settings.workers)
        running: dict[Any, _Running] = {}
        idle: list[Any] = []
        loop_started: float | None = None
        ready: _Running | None = None
        try:
            self.recover_stale()
            if self.settings.gpus_per_worker > 0:
                check_gpus(self.settings.gpus_per_worker, ray.cluster_resources().get("GPU", 0.0))
            setup = WorkerSetup(
                str(self.settings.teacher),
                None if self.settings.data is None else str(self.settings.data),
                self.settings.split,
                memory_bytes=int(self.settings.worker_memory_mb * 2**20),
                gpus=self.settings.gpus_per_worker,
                audio=ray.put(self.context().decoded()),
            )
            idle.extend(self.start_worker(setup) for _ in range(self.settings.workers))
            loop_started, self._waited_s = time.perf_counter(), 0.0
            deaths = 0
            while True:  # ``ready``: a feasible candidate prepared while every worker is busy
                # RUNNING trials of another driver (or of a dead one, until they go stale) count as
                # in flight: concurrent drivers then share the count instead of overshooting it.
                ours = _in_flight(running, ready)
                elsewhere = self.recover_stale(tuple(t.number for t in ours))
                finished, screened = self.counts()
                base = finished + elsewhere  # + this driver's candidates in flight: below --trials
                self.costs.set_speed(self.speed.current())  # probes again when the last one is old

                # Fill idle workers; with none idle, prepare the next candidate one ask at a time
                # (results are collected between asks), so a worker that finishes starts at once
                # instead of waiting while screened candidates are told.
                while True:
                    if ready is not None and idle:
                        launched = self._fine_tune(ready, idle.pop())
                        running[launched.future], ready = launched, None
                        self._report(len(running))
                        continue
                    if ready is not None or base + len(running) >= self.settings.trials:
                        break
                    if screened >= self.settings.max_screened_per_trial * self.settings.trials:
                        raise ConfigError(
                            f"{screened} candidates broke the budget ({self.budget.describe()}) "
                            f"while {finished} fitted it; finished trials are kept: raise the "
                            "budget or narrow the space (--config [space])"
                        )
                    self.warm_starts.enqueue_next()
                    ready = self._propose()
                    if ready is None:
                        screened += 1
                        self.liveness.beat(ours)  # stay visibly alive
                        if screened % 100 == 0:
                            self._report(len(running))
                        if not idle:
                            break
                if not running:
                    if finished >= self.settings.trials:
                        break
                    with self._waiting():  # others' trials: wait for them or staleness
                        time.sleep(self.settings.heartbeat_s)
                    continue
                # still preparing: only look for results, do not wait for one
                preparing = ready is None and base + len(running) < self.settings.trials
                with self._waiting():
                    timeout = 0 if preparing else self.settings.heartbeat_s
                    done, _ = ray.wait(list(running), num_returns=1, timeout=timeout)
                for future in done:
                    entry = running.pop(future)
                    worker, promoted = self._finish(entry, setup)
                    if promoted is not None:  # its full fine-tuning, on the same worker
                        running[promoted.future] = promoted
                        continue
                    if worker is None:
                        deaths += 1
                        if deaths > MAX_WORKER_DEATHS:
                            raise ConfigError(f"{deaths} search workers died; see ray logs") from None
                        worker = self.start_worker(setup)
                    idle.append(worker)
                self.liveness.beat(_in_flight(running, ready), force=not preparing)
                if done or not preparing:
                    self._report(len(running))
        except KeyboardInterrupt:
            for trial in _in_flight(running, ready):
                self.liveness.fail(trial, "interrupted by the user", retry=True)
            raise
        finally:
            if loop_started is not None:
                self.driver_seconds = time.perf_counter() - loop_started - self._waited_s
            # a Ray this driver joined (a cluster, or one a test or notebook started) gets its CPUs
            # back now, not whenever the handles are collected
            for worker in idle + [r.worker for r in running.values()]:
                with contextlib.suppress(Exception):  # already gone with a Ray that went down
                    ray.kill(worker)
            if started_ray:
                ray.shutdown()
        return self.summary(time.perf_counter() - started)

    def _finish(self, entry: _Running, setup: WorkerSetup) -> tuple[Any | None, _Running | None]:
        """Tell a finished trial, or promote it from screening to its full epochs. Returns its
        worker (None if the worker died unexpectedly) and the promoted run (None if told)."""
        import ray

        trial = entry.trial
        try:
            result = ray.get(entry.future)
        except Exception as exc:
            reason, worker_died = failure_reason(exc)
            # a worker that stopped itself (over its memory cap) left the reason; the same recipe
            # would only do it again, so that trial is not retried
            note = failure_note(self.settings.trial_dir(trial.number)) if worker_died else None
            self.liveness.fail(trial, note or reason, retry=worker_died and note is None)
            if worker_died:
                return (None if note is None else self.start_worker(setup)), None
            return entry.worker, None
        if entry.screening:
            others = self._screening_results(besides=trial.number)
            set_attrs(trial, screening_attrs(result.score, result.seconds))
            if self.settings.fidelity.promotes(Screened(result.score, *entry.costs), others):
                promoted = dataclasses.replace(entry, epochs=entry.full_epochs)
                return entry.worker, self._fine_tune(promoted, entry.worker)
        set_attrs(trial, result_attrs(result, self.settings.folder, entry.epochs))
        self.study.tell(trial, Objectives(result.score, *entry.costs).values())
        return entry.worker, None

    def _screening_results(self, *, besides: int) -> list[Screened]:
        """Every screening result of the study but trial ``besides``'s (promotion ranks by them)."""
        out = []
        for t in self.study.get_trials(deepcopy=False):
            score = screen_score(t)
            if t.number != besides and score is not None:
                predicted = Predicted.of(t)
                out.append(Screened(score, predicted.latency_ms, predicted.peak_bytes))
        return out

    def summary(self, seconds: float) -> SearchSummary:
        state = StudyState.of(self.study.get_trials(deepcopy=False))  # its fields are SearchSummary's
        return SearchSummary(
            study=self.settings.study,
            storage=self.settings.storage,
            **dataclasses.asdict(state),  # the counts, the front and its origins
            budget=self.budget,
            seconds=seconds,
            most_sensitive=() if self.sensitivity is None else tuple(describe(self.sensitivity)),
            allocations=self.warm_starts.count(ALLOCATION) if self.settings.allocate else None,
            driver_seconds=self.driver_seconds,
            sensitivity_seconds=self.sensitivity_seconds,
            allocation_seconds=self.allocation_seconds,
            speed=self.speed.log(),
        )
