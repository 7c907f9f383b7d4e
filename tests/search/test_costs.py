"""The uniform rule as a user would apply it (the baseline every search is measured against)."""

from __future__ import annotations

from paretone.compress import UniformSetting
from paretone.evaluators import load_context
from paretone.hw_models import LatencyModel, MemoryModel
from paretone.search import Budget
from paretone.search._costs import FORMAT_NAMES, KEEP_LEVELS, CostModel, InvalidCandidate
from paretone.spaces import SearchSpace
from tests.helpers import synthetic_profile


def test_uniform_rule_is_the_largest_fitting_keep_for_every_format_and_front_end(tiny_teacher, tmp_path):
    teacher = load_context(tiny_teacher).teacher
    space = SearchSpace.build(teacher.structure(), teacher=teacher.config)
    profile = synthetic_profile(teacher, tmp_path, "rule", ns_per_mac=1.0)
    costs = CostModel(
        teacher.config, latency=LatencyModel(profile), memory=MemoryModel(profile), device="rule"
    )
    budget = Budget(latency_fraction=0.5).resolve(costs.teacher_latency_ms)
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
    assert costs.warm_starts(space, budget)[0] == rule[0]  # the first warm start is the rule's best
