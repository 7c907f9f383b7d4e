"""One budget type: as given, resolved once, checked on predictions and on measurements."""

from __future__ import annotations

import math

import pytest

from paretone.errors import ConfigError
from paretone.search import Budget, ResolvedBudget


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"latency_ms": -1.0}, "--latency-budget-ms must be a positive number"),
        ({"latency_ms": 0.0}, "--latency-budget-ms must be a positive number"),
        ({"latency_ms": math.nan}, "--latency-budget-ms must be a positive number"),
        ({"latency_ms": True}, "--latency-budget-ms must be a positive number"),
        ({"memory_mb": math.inf}, "--memory-budget-mb must be a positive number"),
        ({"size_mb": -0.5}, "--size-budget-mb must be a positive number"),
        ({"latency_fraction": 2.0}, "fraction <= 1"),
        ({"latency_ms": 1.0, "latency_fraction": 0.5}, "not both"),
    ],
)
def test_nonsense_budgets_are_refused(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        Budget(**kwargs)


def test_a_budget_resolves_once_and_its_constraints_are_negative_within():
    budget = Budget(latency_fraction=0.25, memory_mb=2.0, size_mb=0.5).resolve(4.0)
    assert budget.latency_ms == 1.0 and budget.teacher_latency_ms == 4.0
    assert budget.constraints(0.8, 1.5e6, 0.4e6) == pytest.approx(
        {"latency_ms": -0.2, "memory_mb": -0.5, "size_mb": -0.1}
    )
    assert all(c > 0 for c in budget.constraints(1.2, 3e6, 0.6e6).values())
    assert list(Budget().resolve(4.0).constraints(1.2, 3e6, 1e6)) == ["latency_ms"]  # only those given
    assert Budget().resolve(4.0).latency_ms == 3.0  # no latency given: the default fraction, 0.75


def test_a_fraction_is_checked_against_the_teacher_measured_beside_the_candidate():
    own = Budget(latency_fraction=0.25).resolve(4.0)
    assert own.latency_ms == 1.0  # candidates are chosen on the prediction...
    assert own.limit_beside(8.0) == 2.0 and own.limit_beside(2.0) == 0.5  # ...checked on the measurement
    absolute = Budget(latency_ms=1.5).resolve(4.0)
    assert (absolute.latency_ms, absolute.limit_beside(8.0)) == (1.5, 1.5)  # milliseconds stay put


def test_the_stored_form_round_trips_and_old_studies_still_read():
    resolved = Budget(latency_fraction=0.25, size_mb=0.5).resolve(4.0)
    assert ResolvedBudget.from_dict(resolved.to_dict()) == resolved
    old = ResolvedBudget.from_dict(
        {"latency_ms": 1.0, "latency_fraction": 0.25, "memory_mb": None, "size_mb": None}
    )
    assert (
        old.given == Budget(latency_fraction=0.25) and old.latency_ms == 1.0 and old.teacher_latency_ms == 4.0
    )
    with pytest.raises(ConfigError, match="malformed budget record"):
        ResolvedBudget.from_dict({"given": {}, "latency_ms": "fast"})
    with pytest.raises(ConfigError, match="the device profile is broken"):
        Budget(latency_fraction=0.5).resolve(0.0)


def test_the_flags_give_the_same_budget_again():
    budget = Budget(latency_fraction=0.25, memory_mb=8.0)
    assert budget.flags() == ["--latency-budget-fraction 0.25", "--memory-budget-mb 8"]


def test_a_scaled_budget_keeps_its_kind_and_only_the_latency_shrinks():
    fraction = Budget(latency_fraction=0.25, memory_mb=2.0).resolve(4.0).scaled(0.8)
    assert fraction.latency_ms == pytest.approx(0.8) and fraction.given.latency_fraction == pytest.approx(0.2)
    assert fraction.beside_teacher(8.0).latency_ms == pytest.approx(1.6)  # still a share of the teacher
    assert fraction.memory_mb == 2.0  # memory and size are not laddered
    absolute = Budget(latency_ms=1.5).resolve(4.0).scaled(0.5)
    assert (absolute.latency_ms, absolute.given.latency_ms, absolute.limit_beside(8.0)) == (0.75, 0.75, 0.75)
    assert Budget().resolve(4.0).scaled(0.5).latency_ms == 1.5  # the default fraction, halved
    for share in (0.0, 1.5, -0.2):
        with pytest.raises(ValueError, match="share must be in"):
            fraction.scaled(share)
