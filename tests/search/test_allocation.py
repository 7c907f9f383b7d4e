"""Allocations from measured sensitivity: the measurement on a real teacher and real audio, the
integer program against brute force, the allocations priced whole, and the study they start."""

from __future__ import annotations

import itertools
import json

import optuna
import pytest

from paretone.evaluators import Change, load_context
from paretone.hw_models import LatencyModel, MemoryModel
from paretone.search import Budget, StudyInfo, make_storage
from paretone.search._allocation import (
    Option,
    _solve,
    allocate,
    options,
    sensitivity_for,
    single_changes,
    teacher_point,
)
from paretone.search._attrs import ALLOCATION, LADDER, UNIFORM, origin
from paretone.search._costs import CostModel
from paretone.search._liveness import Liveness
from paretone.spaces import SearchSpace
from tests.helpers import make_driver, synthetic_profile


@pytest.fixture(scope="module")
def context(tiny_teacher):
    return load_context(tiny_teacher)


@pytest.fixture(scope="module")
def space(context) -> SearchSpace:
    return SearchSpace.build(context.teacher.structure(), teacher=context.teacher.config)


@pytest.fixture(scope="module")
def table(context, space):
    table, _ = sensitivity_for(context, space, clips=64)
    return table


@pytest.mark.slow  # measures the teacher's sensitivity on real audio
def test_sensitivity_ranks_harsh_changes_above_mild_ones_and_is_cached_beside_the_teacher(
    context, space, table, monkeypatch
):
    measured = {(e.parameter, e.value) for e in table.entries}
    assert measured == {(c.parameter, c.value) for c in single_changes(space)}  # every change, once
    by_format: dict[str, float] = {}
    by_keep: dict[float, float] = {}
    for e in table.entries:
        assert e.divergence >= 0 and -1 <= e.metric_change <= 1
        if e.parameter.startswith("format:"):
            by_format[e.value] = by_format.get(e.value, 0.0) + e.divergence
        if e.parameter.startswith("keep:"):
            by_keep[e.value] = by_keep.get(e.value, 0.0) + e.divergence
    assert by_format["w2"] > by_format["w4"] > by_format["w8"] > 0  # fewer bits move the outputs more
    assert by_keep[min(by_keep)] > by_keep[max(by_keep)] > 0  # keeping a quarter moves them more
    assert table.clips == 64 and 0 < table.base_metric <= 1
    # measured once: a second call reads the JSON beside the teacher instead of measuring
    import paretone.search._allocation as allocation

    monkeypatch.setattr(allocation, "measure_sensitivity", lambda *a, **k: pytest.fail("measured again"))
    again, path = sensitivity_for(context, space, clips=64)
    assert again == table and path.parent == context.teacher_path / "cache"
    assert json.loads(path.read_text())["format"] == "paretone.sensitivity/1"
    path.write_text("{torn")  # a torn cache is measured again, not trusted
    monkeypatch.undo()
    assert sensitivity_for(context, space, clips=64)[0].entries == table.entries


def _option(parameter: str, value: str, divergence: float, latency: float) -> Option:
    return Option(Change(parameter, value), divergence, latency, 0.0, 0.0)


def test_the_integer_program_finds_the_least_sensitive_choice_within_the_allowance():
    by_param = {
        name: [_option(name, "own", 0.0, 0.0)]
        + [_option(name, f"v{i}", loss, -saving) for i, (loss, saving) in enumerate(choices)]
        for name, choices in {
            "a": [(0.30, 4.0), (0.05, 1.0)],
            "b": [(0.10, 3.0), (0.40, 5.0)],
            "c": [(0.02, 0.5), (0.20, 2.5), (0.90, 6.0)],
        }.items()
    }
    for allowance in (-0.5, -3.0, -5.5, -8.0, -12.0):
        best = None
        for combo in itertools.product(*by_param.values()):
            if sum(o.latency_ms for o in combo) <= allowance + 1e-9:
                loss = sum(o.divergence for o in combo)
                best = loss if best is None else min(best, loss)
        chosen = _solve(by_param, latency_ms=allowance, peak_bytes=None, model_bytes=None)
        if best is None:
            assert chosen is None
            continue
        picked = [next(o for o in by_param[n] if o.change.value == value) for n, value in chosen.items()]
        assert set(chosen) == {"a", "b", "c"}
        assert sum(o.latency_ms for o in picked) <= allowance + 1e-9
        assert sum(o.divergence for o in picked) == pytest.approx(best)  # the optimum, not a heuristic


@pytest.mark.slow  # measures the teacher's sensitivity on real audio
def test_allocations_fit_the_budget_as_whole_candidates(context, space, table, tmp_path):
    profile = synthetic_profile(context.teacher, tmp_path, "alloc", ns_per_mac=1.0)
    costs = CostModel(
        context.teacher.config, latency=LatencyModel(profile), memory=MemoryModel(profile), device="alloc"
    )
    budget = Budget(latency_fraction=0.6).resolve(costs.teacher_latency_ms)
    points = allocate(space, costs, budget, table)
    assert points and len(points) == len({json.dumps(p, sort_keys=True) for p in points})
    for point in points:
        assert costs.fits(space.recipe(point), budget)
    # the program spends the allowance where it hurts least: by the additive estimate it solves,
    # no point is less sensitive, the uniform rule's largest fitting candidate included
    by_param = options(space, costs, table)
    teacher_ms = costs.cost(space.recipe(teacher_point(space))).predicted.latency_ms
    allowance = budget.latency_ms - teacher_ms
    chosen = _solve(by_param, latency_ms=allowance, peak_bytes=None, model_bytes=None)
    fitting = costs.largest_fitting(space, budget, "float")
    assert chosen is not None and fitting is not None

    def additive(point, attribute: str) -> float:
        return sum(getattr(o, attribute) for opts in by_param.values() for o in opts
                   if point.get(o.change.parameter) == o.change.value)  # fmt: skip

    assert additive(chosen, "latency_ms") <= allowance + 1e-9
    if additive(fitting[1], "latency_ms") <= allowance:
        assert additive(chosen, "divergence") <= additive(fitting[1], "divergence") * (1 + 1e-4)


@pytest.mark.slow  # measures the teacher's sensitivity on real audio
def test_allocations_exist_at_a_budget_only_a_coarser_front_end_reaches(context, space, table, tmp_path):
    """A coarser hop makes every layer cheaper, so savings summed from single changes overstate
    what a point with the hop and the layer changes saves; solved once per front-end choice, the
    program still finds points that fit whole wherever the uniform rule does."""
    profile = synthetic_profile(context.teacher, tmp_path, "alloc", ns_per_mac=1.0)
    costs = CostModel(
        context.teacher.config, latency=LatencyModel(profile), memory=MemoryModel(profile), device="alloc"
    )
    budget = Budget(latency_fraction=0.25).resolve(costs.teacher_latency_ms)  # summed: nothing fits
    finest = space.front_end_options()[0]
    rule = costs.uniform_rule(space, budget)
    assert rule and all(p["hop_length"] != finest.hop_length for p in rule)  # only a coarser hop fits at all
    points = allocate(space, costs, budget, table)
    assert points and all(costs.fits(space.recipe(p), budget) for p in points)


@pytest.mark.slow  # measures the teacher's sensitivity on real audio
def test_a_study_begins_with_the_strongest_uniform_candidate_then_the_allocations(
    tiny_teacher, synthetic_device, tmp_path
):
    profile, _ = synthetic_device
    driver = make_driver(tiny_teacher, profile, tmp_path, budget=Budget(latency_fraction=0.6), allocate=True)
    starts = StudyInfo.read(driver.study, driver.settings.folder).warm_starts
    origins = [s.origin for s in starts]
    assert origins[0] == UNIFORM and ALLOCATION in origins
    allocations = origins.count(ALLOCATION)
    rest = origins[1 + allocations :]  # the other uniform candidates, then the ladder below the budget
    assert origins[: 1 + allocations] == [UNIFORM, *[ALLOCATION] * allocations]
    assert rest == sorted(rest, key=[UNIFORM, LADDER].index) and set(rest) <= {UNIFORM, LADDER}
    summary = driver.summary(0.0)
    assert summary.allocations == allocations  # reported, also when none fits
    assert summary.sensitivity_seconds > 0 and summary.allocation_seconds > 0  # both timed, apart
    assert driver.sensitivity is not None and driver.sensitivity.entries
    # a warm start that fails and is retried keeps its origin (front members are counted by it)
    study = optuna.load_study(study_name="s", storage=make_storage(driver.settings.storage))
    asked = []
    for _ in range(2):  # as the driver does: one warm start enqueued at a time, then asked
        driver.warm_starts.enqueue_next()
        asked.append(study.ask())
    first, second = asked
    assert origin(study.trials[first.number]) == UNIFORM and origin(study.trials[second.number]) == ALLOCATION
    Liveness(study, heartbeat_s=5, stale_after_s=60).fail(second, "worker died", retry=True)
    retry = study.ask()
    assert retry.user_attrs["retry_of"] == second.number and origin(study.trials[retry.number]) == ALLOCATION


def test_warm_starts_stored_by_an_older_paretone_read_as_uniform_ones():
    from paretone.search._attrs import WarmStart

    old = {"heads:blocks.0.attn": 2, "format:head": "w8a8"}
    assert WarmStart.from_stored(old) == WarmStart(old, UNIFORM)
    new = WarmStart({"params": 1}, ALLOCATION)  # a parameter may even be called "params"
    stored = {"params": new.params, "origin": new.origin}
    assert WarmStart.from_stored(stored) == new
