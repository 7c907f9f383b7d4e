"""Candidates from measured sensitivity and predicted cost: an integer program, not a draw.

Every parameter of the teacher's arm gets a choice among its values (the teacher's own, each format,
a few kept fractions, ...). Each single change has a measured sensitivity (``evaluators``: how far
the teacher's outputs move) and a predicted cost change (the device profile); scipy's ``milp``
(HiGHS) picks one value per parameter minimising summed sensitivity while the summed cost changes
fit a latency target (and the memory and size budgets), as HAWQ-V3 allocates bit-widths. Costs do
not add up exactly (pruning a unit shrinks the layer a format also speeds up), so each solution is
priced whole and the target tightened until it fits. Several targets over the feasible range give
several candidates.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paretone._io import read_json, write_json
from paretone.compress import FrontEnd, StudentArchitecture, UniformSetting
from paretone.errors import ConfigError
from paretone.evaluators import (
    SENSITIVITY_CLIPS,
    Change,
    SensitivityTable,
    TeacherContext,
    measure_sensitivity,
    table_key,
)
from paretone.search._budget import ResolvedBudget
from paretone.search._costs import CostModel, InvalidCandidate
from paretone.spaces import SearchSpace
from paretone.training import CACHE_DIR

KEEP_LEVELS = (0.75, 0.5, 0.25)  # kept fractions a numeric parameter is measured at
TARGET_LEVELS = (1.0, 0.8, 0.6)  # latency targets, as fractions of the budget, one allocation each
REFITS = 4  # re-solves with a tighter target when the whole candidate is predicted over


@dataclass(frozen=True)
class Option:
    """One value of one parameter: its measured sensitivity and predicted cost change."""

    change: Change
    divergence: float  # from the teacher's outputs: what the integer program minimises
    latency_ms: float
    peak_bytes: float
    model_bytes: float


def teacher_point(space: SearchSpace) -> dict[str, Any]:
    """The point that leaves the teacher as it is (each categorical at its first choice)."""
    return space.uniform(UniformSetting(1.0, "float", None))


def single_changes(space: SearchSpace) -> list[Change]:
    """Every value each parameter of the teacher's arm can take away from the teacher's setting:
    all choices of a categorical, the uniform rule's values at ``KEEP_LEVELS`` of a numeric one."""
    base = teacher_point(space)
    levels = [space.uniform(UniformSetting(keep, "float", None)) for keep in KEEP_LEVELS]
    changes = []
    for key, params in space.params.items():
        if key == StudentArchitecture.key:
            continue  # a new student is another model, not a change of this one
        for p in params:
            values = p.choices if p.kind == "categorical" else tuple(level[p.name] for level in levels)
            for value in dict.fromkeys(values):
                if value != base[p.name]:
                    changes.append(Change(p.name, value))
    return changes


def sensitivity_for(
    context: TeacherContext,
    space: SearchSpace,
    *,
    clips: int = SENSITIVITY_CLIPS,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[SensitivityTable, Path]:
    """The table for this teacher, split and space: read from beside the teacher if measured
    before, else measured and written there (``cache/sensitivity-<key>.json``)."""
    key = table_key(context, space.to_dict()["params"], clips)
    path = context.teacher_path / CACHE_DIR / f"sensitivity-{key}.json"
    if path.is_file():
        try:
            return SensitivityTable.from_dict(read_json(path, missing="", fix="")), path
        except ConfigError:
            pass  # torn or foreign: measured again and replaced (it is our cache file)
    base = teacher_point(space)
    buildable = []
    for change in single_changes(space):
        try:
            buildable.append((change, space.recipe(base | {change.parameter: change.value})))
        except ConfigError:
            continue  # a value this teacher cannot take alone (the operators refuse it)
    table = measure_sensitivity(context, buildable, key=key, clips=clips, progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, table.to_dict())
    return table, path


def options(
    space: SearchSpace, costs: CostModel, table: SensitivityTable, base: dict[str, Any] | None = None
) -> dict[str, list[Option]]:
    """Per parameter, the value of ``base`` (the teacher's point by default: zero change) and each
    measured, priceable change, its cost changes priced against ``base``."""
    base = teacher_point(space) if base is None else base
    origin = costs.cost(space.recipe(base)).predicted
    out: dict[str, list[Option]] = {}
    for entry in table.entries:
        if entry.value == base.get(entry.parameter):
            continue  # the base's own value: added below at zero change
        try:
            p = costs.cost(space.recipe(base | {entry.parameter: entry.value})).predicted
        except InvalidCandidate:
            continue
        if entry.parameter not in out:
            own = Change(entry.parameter, base[entry.parameter])
            out[entry.parameter] = [Option(own, _divergence_of(table, own), 0.0, 0.0, 0.0)]
        out[entry.parameter].append(
            Option(
                entry.change,
                entry.divergence,
                p.screened_latency_ms - origin.screened_latency_ms,
                p.peak_bytes - origin.peak_bytes,
                p.model_bytes - origin.model_bytes,
            )
        )
    return out


def _divergence_of(table: SensitivityTable, change: Change) -> float:
    """The measured divergence of a single change; 0 for the teacher's own value (not measured)."""
    return next(
        (e.divergence for e in table.entries if (e.parameter, e.value) == (change.parameter, change.value)),
        0.0,
    )


def allocate(
    space: SearchSpace,
    costs: CostModel,
    budget: ResolvedBudget,
    table: SensitivityTable,
    *,
    levels: tuple[float, ...] = TARGET_LEVELS,
) -> list[dict[str, Any]]:
    """Distinct points, one per latency target ``level x budget`` that an allocation fits, each
    predicted (whole) within the budget; the least sensitive first.

    The front-end choice changes the cost of every layer after it (a coarser hop gives all of them
    fewer frames), so savings do not add up across it: summed alone, the hop's and the layers'
    savings promised 0.45 ms where the whole point cost 0.77 (a real AST at 25%). The program is
    therefore solved once per front-end choice, every other option priced against the teacher with
    that front-end, and per target the least sensitive point that fits whole is kept. Latencies
    and the budget are those at the device's speed now (``CostModel.budget_now``).
    """
    budget = costs.budget_now(budget)
    front_names = {p.name for p in space.params.get(FrontEnd.key, [])}
    around = []  # per front-end choice: its base point, own divergence and priced options, once
    for front_end in space.front_end_options():
        base = space.uniform(UniformSetting(1.0, "float", front_end))
        own = sum(_divergence_of(table, Change(n, base[n])) for n in front_names)
        by_param = {n: o for n, o in options(space, costs, table, base).items() if n not in front_names}
        around.append((base, own, by_param))
    found: list[dict[str, Any]] = []
    for level in levels:
        best: tuple[float, dict[str, Any]] | None = None
        for base, own, by_param in around:
            fitted = _fit(space, costs, budget, by_param, base, budget.latency_ms * level)
            if fitted is not None and (best is None or own + fitted[0] < best[0]):
                best = (own + fitted[0], fitted[1])
        if best is not None and best[1] not in found:
            found.append(best[1])
    return found


def _fit(
    space: SearchSpace,
    costs: CostModel,
    budget: ResolvedBudget,
    by_param: dict[str, list[Option]],
    base: dict[str, Any],
    target_ms: float,
) -> tuple[float, dict[str, Any]] | None:
    """(summed divergence, point) of the program's choice around ``base`` for ``target_ms``, priced
    whole and the target tightened until it fits the budget; None if it does not within REFITS."""
    origin, goal_ms = costs.cost(space.recipe(base)).predicted, target_ms
    for _ in range(REFITS):
        chosen = _solve(
            by_param,
            latency_ms=target_ms - origin.screened_latency_ms,
            peak_bytes=None if budget.memory_mb is None else budget.memory_mb * 1e6 - origin.peak_bytes,
            model_bytes=None if budget.size_mb is None else budget.size_mb * 1e6 - origin.model_bytes,
        )
        if chosen is None:
            return None  # nothing meets this target even by the additive estimate
        point = base | chosen
        try:
            predicted = costs.cost(space.recipe(point)).predicted
        except ConfigError:
            return None
        if budget.fits(predicted.screened_latency_ms, predicted.peak_bytes, predicted.model_bytes):
            divergence = sum(
                o.divergence
                for name, opts in by_param.items()
                for o in opts
                if o.change.value == chosen[name]
            )
            return divergence, point
        target_ms *= min(0.95, goal_ms / predicted.screened_latency_ms)  # the overshoot, and more
    return None


def _solve(
    by_param: dict[str, list[Option]],
    *,
    latency_ms: float,
    peak_bytes: float | None,
    model_bytes: float | None,
) -> dict[str, Any] | None:
    """One option per parameter minimising summed sensitivity with the summed changes within the
    given allowances (a cost change may be negative: savings); None if infeasible."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    flat = [(name, option) for name, opts in by_param.items() for option in opts]
    if not flat:
        return None
    n = len(flat)
    names = list(by_param)
    choose_one = np.zeros((len(names), n))
    for column, (name, _) in enumerate(flat):
        choose_one[names.index(name), column] = 1.0
    constraints = [LinearConstraint(choose_one, 1.0, 1.0)]
    allowances = {"latency_ms": latency_ms, "peak_bytes": peak_bytes, "model_bytes": model_bytes}
    for attribute, allowance in allowances.items():
        if allowance is not None:
            row = np.array([[getattr(option, attribute) for _, option in flat]])
            constraints.append(LinearConstraint(row, -np.inf, allowance))
    finite = [o.divergence for _, o in flat if math.isfinite(o.divergence)]
    scale = max(finite, default=0.0) or 1.0  # divergences of 1e-5..1e-2: to O(1), below HiGHS's gaps
    cost = np.array([o.divergence / scale if math.isfinite(o.divergence) else 1e9 for _, o in flat])
    result = milp(
        cost,
        constraints=constraints,
        integrality=np.ones(n),
        bounds=Bounds(0, 1),
        options={"mip_rel_gap": 1e-7},  # the optimum itself: HiGHS's default stops within 1e-4
    )
    if result.status != 0 or result.x is None:
        return None
    return {name: option.change.value for (name, option), x in zip(flat, result.x, strict=True) if x > 0.5}


def describe(table: SensitivityTable, count: int = 5) -> list[str]:
    """The most sensitive single changes, for the search report."""
    return [
        f"{e.parameter} = {json.dumps(e.value)}: divergence {e.divergence:.3f}, loss {e.loss_change:+.3f}, "
        f"metric {e.metric_change:+.1%}"
        for e in table.most_sensitive(count)
    ]
