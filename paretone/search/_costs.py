"""What a candidate costs on the device, predicted in microseconds: screening and warm starts.

Latency and memory come from the device profile's predictors over the candidate's kernels (no
export). A candidate predicted over budget is never fine-tuned; a budget no candidate of the space
can meet is refused before the search starts; and a new study begins with the largest uniform
candidates that fit, because drawn at random almost every candidate breaks a tight budget, then
with the uniform rule's best at a ladder of lower latencies down to the space's fastest uniform
candidate, because a front is a trade-off and a rule applied at the budget alone leaves everything
faster unexplored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from paretone.compress import RUNTIME_FORMATS, TEACHER, Recipe, UniformSetting
from paretone.errors import ConfigError
from paretone.hw_models import LatencyModel, MemoryModel, SpeedProbe
from paretone.models import Kernel
from paretone.search._attrs import LADDER, UNIFORM, Predicted, WarmStart
from paretone.search._budget import ResolvedBudget
from paretone.spaces import SearchSpace

WARM_STARTS = 3  # uniform candidates enqueued first: the formats that keep the most within budget
LADDER_SHARES = (0.9, 0.8, 0.7, 0.6, 0.5)  # of the latency budget: where the ladder's rungs stand
KEEP_LEVELS = tuple(1 - i / 16 for i in range(16))  # kept fractions the uniform rule tries, largest first
FORMAT_NAMES = tuple(dict.fromkeys(f.name for f in RUNTIME_FORMATS))  # every format, table order


class InvalidCandidate(ConfigError):
    """A sampled point the operators cannot build (a rank the pruned layer cannot take, ...): told to
    the study as infeasible, never fine-tuned."""


@dataclass(frozen=True)
class Cost:
    kernels: list[Kernel]
    predicted: Predicted


class CostModel:
    """Predicted costs of recipes over one teacher on one device (thread-safe for reading; the
    driver alone calls ``set_speed``).

    Every cost is predicted twice when the device was probed: at the calibration's speed (the
    study's one scale, so trials screened in different speed states rank alike) and at the speed
    the probe read, which the budget checks use. A fraction budget is then checked against the
    teacher predicted at that same speed (``budget_now``)."""

    def __init__(
        self,
        teacher_config: Any,
        *,
        latency: LatencyModel,
        memory: MemoryModel,
        device: str,
        chunk_samples: int | None = None,
        speed: SpeedProbe | None = None,
    ) -> None:
        """``chunk_samples``: predict one call on a stream of such chunks (a streaming student's
        chunk, any other model's whole window) instead of one clip. ``speed``: the device's speed
        now (a probe); the search replaces it (``set_speed``) as it probes again."""
        self.teacher_config, self.latency, self.memory, self.device = teacher_config, latency, memory, device
        self.chunk_samples = chunk_samples
        self._teacher_kernels = Recipe().kernels(teacher_config, chunk_samples=chunk_samples)
        self.teacher_latency_ms = latency.predict(self._teacher_kernels).require_complete(device).latency_ms
        if memory.predict(self._teacher_kernels).peak_bytes is None:
            raise ConfigError(
                f"device profile {device!r} has no whole-model memory measurements, so peak memory cannot "
                f"be predicted; re-run `paretone calibrate --device {device}`"
            )
        self.speed: SpeedProbe | None = None
        self.teacher_now_ms = self.teacher_latency_ms  # the teacher at ``speed``
        self.set_speed(speed)

    def set_speed(self, speed: SpeedProbe | None) -> None:
        """Screen at ``speed`` from now on (None: at the calibration's)."""
        if speed is self.speed:
            return
        self.speed, self.teacher_now_ms = speed, self.teacher_latency_ms
        if speed is not None:
            now = self.latency.predict(self._teacher_kernels, speed=speed).require_complete(self.device)
            self.teacher_now_ms = now.latency_ms

    def budget_now(self, budget: ResolvedBudget) -> ResolvedBudget:
        """``budget`` at the speed now: a fraction of the teacher is one of the teacher at this speed."""
        return budget if self.speed is None else budget.beside_teacher(self.teacher_now_ms)

    def cost(self, recipe: Recipe) -> Cost:
        """InvalidCandidate if the recipe cannot be built; ConfigError if the profile cannot predict
        every kernel (never a silent partial sum)."""
        try:
            kernels = recipe.kernels(self.teacher_config, chunk_samples=self.chunk_samples)
        except ConfigError as exc:
            raise InvalidCandidate(str(exc)) from None
        calibrated = self.latency.predict(kernels).require_complete(self.device)
        now = (
            calibrated
            if self.speed is None
            else self.latency.predict(kernels, speed=self.speed).require_complete(self.device)
        )
        memory = self.memory.predict(kernels)
        predicted = Predicted(
            latency_ms=calibrated.latency_ms,
            model_bytes=memory.model_bytes,
            peak_bytes=int(memory.peak_bytes or 0),
            macs=sum(k.macs for k in kernels),
            params=sum(k.params for k in kernels),
            latency_interval_ms=now.interval_ms,
            speed_factor=None if self.speed is None else self.speed.overall,
            latency_now_ms=None if self.speed is None else now.latency_ms,
        )
        return Cost(kernels, predicted)

    def fits(self, recipe: Recipe, budget: ResolvedBudget) -> bool:
        """Whether the recipe fits ``budget`` at the speed now."""
        p = self.cost(recipe).predicted
        return self.budget_now(budget).fits(p.screened_latency_ms, p.peak_bytes, p.model_bytes)

    def smallest(self, space: SearchSpace, arm: str = TEACHER) -> list[tuple[Predicted, dict[str, Any]]]:
        """Every format and front-end choice of ``arm`` keeping the least the space allows, with its
        predicted cost (those that cannot be built, such as a hop a chunk cannot hold, left out)."""
        found = []
        for fmt in FORMAT_NAMES:
            for front_end in space.front_end_options(arm):
                params = space.uniform(UniformSetting(0.0, fmt, front_end), arm)
                try:
                    found.append((self.cost(space.recipe(params)).predicted, params))
                except InvalidCandidate:
                    continue
        return found

    def check_reachable(self, space: SearchSpace, budget: ResolvedBudget) -> None:
        """ConfigError naming the smallest candidate's latency if nothing in the space fits (at the
        speed now)."""
        latencies = [p.screened_latency_ms for arm in space.arm_names() for p, _ in self.smallest(space, arm)]
        if not latencies:
            raise ConfigError("no candidate of the search space can be built; widen the space settings")
        smallest, limit_ms = min(latencies), self.budget_now(budget).latency_ms
        if limit_ms < smallest:
            speed = "" if self.speed is None else f" at its speed now ({self.speed.overall:.2f}x)"
            raise ConfigError(
                f"latency budget {limit_ms:.3f} ms is unreachable: the smallest candidate of the "
                f"space is predicted at {smallest:.3f} ms on {self.device}{speed} "
                f"(teacher {self.teacher_now_ms:.3f} ms); raise the budget"
            )

    def largest_fitting(
        self, space: SearchSpace, budget: ResolvedBudget, fmt: str, arm: str = TEACHER
    ) -> tuple[float, dict] | None:
        """(kept fraction, parameters) of the uniform candidate in ``fmt`` keeping the most that
        fits (with the finest front-end that lets it fit), or None."""
        for keep in KEEP_LEVELS:
            for front_end in space.front_end_options(arm):
                params = space.uniform(UniformSetting(keep, fmt, front_end), arm)
                try:
                    if self.fits(space.recipe(params), budget):
                        return keep, params
                except InvalidCandidate:
                    continue
        return None

    def uniform_rule(self, space: SearchSpace, budget: ResolvedBudget) -> list[dict[str, Any]]:
        """The uniform rule at its strongest, as a careful user would apply it by hand: for every
        format and every front-end choice, the largest kept fraction that fits; most kept first
        (then table order, finest front-end first), duplicates dropped."""
        return self.uniform_rules(space, [budget])[0]

    def uniform_rules(
        self, space: SearchSpace, budgets: Sequence[ResolvedBudget]
    ) -> list[list[dict[str, Any]]]:
        """``uniform_rule`` at each of ``budgets``, every candidate's cost predicted once."""
        return [_unique(params for *_, params in rows) for rows in self._fitting_rows(space, budgets)]

    def _fitting_rows(
        self, space: SearchSpace, budgets: Sequence[ResolvedBudget]
    ) -> list[list[tuple[float, int, int, dict[str, Any]]]]:
        """Per budget, (-kept fraction, format's table order, front-end rank, parameters) of the
        largest fitting uniform candidate of every format and front-end choice, most kept first."""
        found: list[list[tuple[float, int, int, dict[str, Any]]]] = [[] for _ in budgets]
        now = [self.budget_now(b) for b in budgets]
        for order, fmt in enumerate(FORMAT_NAMES):
            for rank, front_end in enumerate(space.front_end_options()):
                waiting = set(range(len(budgets)))  # budgets still without a fitting kept fraction
                for keep in KEEP_LEVELS:
                    params = space.uniform(UniformSetting(keep, fmt, front_end))
                    try:
                        p = self.cost(space.recipe(params)).predicted
                    except InvalidCandidate:
                        continue
                    fitting = {
                        i for i in waiting if now[i].fits(p.screened_latency_ms, p.peak_bytes, p.model_bytes)
                    }
                    for i in fitting:
                        found[i].append((-keep, order, rank, params))
                    waiting -= fitting
                    if not waiting:
                        break
        return [sorted(rows, key=lambda f: f[:3]) for rows in found]

    def warm_starts(self, space: SearchSpace, budget: ResolvedBudget) -> list[WarmStart]:
        """The ``WARM_STARTS`` formats whose largest fitting uniform candidate keeps the most
        (predictions only: milliseconds), most kept first; each new student the space offers comes
        right after the first, in its first format (table order: float first) that fits; then the
        ladder (``ladder``). The uniform candidates are priced once for the budget and every rung."""
        at_budget, *levels = self._fitting_rows(space, [budget, *_rung_budgets(budget)])
        best_per_format: dict[int, dict[str, Any]] = {}
        for _, order, _, params in at_budget:  # most kept first: a format's first row is its largest
            best_per_format.setdefault(order, params)
        starts = _unique(best_per_format.values())[:WARM_STARTS]
        students = []
        for arm in space.arm_names()[1:]:
            fitting = (self.largest_fitting(space, budget, fmt, arm) for fmt in FORMAT_NAMES)
            first = next((f for f in fitting if f is not None), None)
            if first is not None:
                students.append(first[1])
        uniform = starts[:1] + students + starts[1:]
        rules = [*(_unique(p for *_, p in rows) for rows in levels), self._floor(space, budget)]
        rungs = _first_unused(rules, taken=uniform)
        return [WarmStart(p, UNIFORM) for p in uniform] + [WarmStart(p, LADDER) for p in rungs]

    def ladder(
        self, space: SearchSpace, budget: ResolvedBudget, *, taken: Sequence[dict[str, Any]] = ()
    ) -> list[dict[str, Any]]:
        """At each of ``LADDER_SHARES`` of the latency budget, fastest last, the uniform rule's
        strongest candidate there (``uniform_rule``'s first) not in ``taken`` nor on a rung above;
        none where nothing in the space fits; then the floor (``_floor``). The rungs spread the first
        fine-tuned trials over the latencies below the budget, where a rule applied at the budget
        never looks."""
        rules = [*self.uniform_rules(space, _rung_budgets(budget)), self._floor(space, budget)]
        return _first_unused(rules, taken=taken)

    def _floor(self, space: SearchSpace, budget: ResolvedBudget) -> list[dict[str, Any]]:
        """The space's fastest uniform candidate, if it fits: the front's fast end. Each rung holds
        the rule's strongest candidate at its share, so under a tight budget every rung stands near
        the budget (at 15% of the teacher each was slower than the rule's float 32-mel candidate)."""
        candidates = self.smallest(space)
        if not candidates:
            return []
        p, params = min(candidates, key=lambda found: found[0].screened_latency_ms)
        fits = self.budget_now(budget).fits(p.screened_latency_ms, p.peak_bytes, p.model_bytes)
        return [params] if fits else []


def _rung_budgets(budget: ResolvedBudget) -> list[ResolvedBudget]:
    return [budget.scaled(share) for share in LADDER_SHARES]


def _first_unused(
    rules: list[list[dict[str, Any]]], *, taken: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each rule's first candidate not in ``taken`` nor chosen from an earlier rule (none if all are)."""
    chosen: list[dict[str, Any]] = []
    for rule in rules:
        first = next((p for p in rule if p not in taken and p not in chosen), None)
        if first is not None:
            chosen.append(first)
    return chosen


def _unique(points: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``points`` in order, each once."""
    unique: list[dict[str, Any]] = []
    for params in points:
        if params not in unique:
            unique.append(params)
    return unique
