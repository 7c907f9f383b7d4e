"""The uniform rule as a user would apply it (the baseline every search is measured against)."""

from __future__ import annotations

import pytest

from paretone.compress import UniformSetting
from paretone.evaluators import load_context
from paretone.hw_models import LatencyModel, MemoryModel
from paretone.search import Budget, ResolvedBudget
from paretone.search._attrs import LADDER, UNIFORM
from paretone.search._costs import FORMAT_NAMES, KEEP_LEVELS, LADDER_SHARES, CostModel, InvalidCandidate
from paretone.spaces import SearchSpace
from tests.helpers import synthetic_profile


@pytest.fixture
def rule_setting(tiny_teacher, tmp_path) -> tuple[SearchSpace, CostModel, ResolvedBudget]:
    """The tiny teacher's space, its costs on a device where latency follows MACs, half its latency."""
    teacher = load_context(tiny_teacher).teacher
    space = SearchSpace.build(teacher.structure(), teacher=teacher.config)
    profile = synthetic_profile(teacher, tmp_path, "rule", ns_per_mac=1.0)
    costs = CostModel(
        teacher.config, latency=LatencyModel(profile), memory=MemoryModel(profile), device="rule"
    )
    return space, costs, Budget(latency_fraction=0.5).resolve(costs.teacher_latency_ms)


def test_uniform_rule_is_the_largest_fitting_keep_for_every_format_and_front_end(rule_setting):
    space, costs, budget = rule_setting
    rule = costs.uniform_rule(space, budget)

    def fits(params) -> bool:
        try:
            return costs.fits(space.recipe(params), budget)
        except InvalidCandidate:
            return False

    expected, keeps = [], {}
    for fmt in FORMAT_NAMES:  # brute force: every kept fraction of every (format, front-end)
        for front_end in space.front_end_options():
            fitting = [k for k in KEEP_LEVELS if fits(space.uniform(UniformSetting(k, fmt, front_end)))]
            if fitting:
                params = space.uniform(UniformSetting(max(fitting), fmt, front_end))
                expected.append(params)
                keeps[str(sorted(params.items()))] = max(fitting)
    assert len(space.front_end_options()) > 1 and 1 < len(rule) <= len(expected)
    assert all(p in rule for p in expected) and all(p in expected for p in rule)
    assert len({str(sorted(p.items())) for p in rule}) == len(rule)  # no duplicates
    order = [keeps[str(sorted(p.items()))] for p in rule]
    assert order == sorted(order, reverse=True)  # most kept first
    assert min(order) < 1.0  # at half the teacher's latency some formats must prune
    assert costs.warm_starts(space, budget)[0].params == rule[0]  # the first warm start is the rule's best


def test_the_ladder_spreads_the_rules_strongest_candidates_below_the_budget(rule_setting):
    space, costs, budget = rule_setting
    starts = costs.warm_starts(space, budget)
    uniform = [s.params for s in starts if s.origin == UNIFORM]
    rungs = [s.params for s in starts if s.origin == LADDER]
    assert [s.origin for s in starts] == [UNIFORM] * len(uniform) + [LADDER] * len(rungs)  # rule, then ladder
    assert rungs == costs.ladder(space, budget, taken=uniform) and len(rungs) >= 3
    params = uniform + rungs
    assert len({str(sorted(p.items())) for p in params}) == len(params)  # no candidate twice

    def latency(p) -> float:
        return costs.cost(space.recipe(p)).predicted.latency_ms

    assert all(latency(p) <= budget.latency_ms for p in rungs)
    assert min(latency(p) for p in rungs) <= 0.6 * budget.latency_ms  # the rungs reach far below the budget
    assert min(latency(p) for p in rungs) < min(latency(p) for p in uniform)
    # each rung is the rule's first candidate at its share of the budget that no earlier start took
    rules = costs.uniform_rules(space, [budget.scaled(s) for s in LADDER_SHARES])
    assert rules[0] == costs.uniform_rule(space, budget.scaled(LADDER_SHARES[0]))  # batched = one at a time
    expected: list[dict] = []
    for rule in rules:
        first = next((p for p in rule if p not in uniform and p not in expected), None)
        expected += [first] if first is not None else []
    # and the last rung is the floor: the fastest uniform candidate of the space (brute force)
    least = [UniformSetting(0.0, f, fe) for f in FORMAT_NAMES for fe in space.front_end_options()]
    floor = min((space.uniform(setting) for setting in least), key=latency)
    assert latency(floor) < min(latency(p) for p in expected) and floor not in uniform
    assert rungs == [*expected, floor]
