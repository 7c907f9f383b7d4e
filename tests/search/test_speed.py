"""Screening at the device's speed: the watch's timing, and the driver's budget checks under a probe.

The probes here are built by hand (a known speed per kernel group) over a synthetic profile, so
which candidate breaks the budget at that speed is known exactly; the probe itself is timed for
real in tests/hw_models/test_calibration.py.
"""

from __future__ import annotations

import pytest

from paretone.errors import ConfigError
from paretone.hw_models import SpeedProbe, group_of
from paretone.search import Budget, SpeedWatch
from tests.helpers import make_driver

W8A8 = "/w8a8"  # the group suffix of int8 (QDQ) kernels: the format this machine kind slows most


def _probe(profile, factor_of) -> SpeedProbe:
    groups = {group_of(m.kernel) for m in profile.kernels.values()}
    return SpeedProbe({g: factor_of(g) for g in groups}, dict.fromkeys(groups, 0.0), 0.25)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_watch_probes_first_then_only_when_the_last_probe_is_old():
    clock, taken = Clock(), []

    def probe() -> SpeedProbe:
        taken.append(clock.now)
        return SpeedProbe({"a": 1.0 + len(taken) / 10, "b": 1.0}, {"a": 0.0, "b": 0.0}, 0.5)

    watch = SpeedWatch(probe=probe, interval_s=60, clock=clock)
    first = watch.current()
    clock.now = 59.0
    assert watch.current() is first and taken == [0.0]
    clock.now = 60.0
    second = watch.current()
    assert second is not first and taken == [0.0, 60.0]
    log = watch.log()
    assert (log.probes, log.seconds, log.not_probed) == (2, 1.0, None)
    assert (log.lowest, log.highest) == (first.overall, second.overall) and log.lowest < log.highest


def test_a_watch_without_a_probe_says_why_and_others_are_refused():
    off = SpeedWatch(probe=None, not_probed="kit-imported")
    assert off.current() is None and off.log().probes == 0 and off.log().not_probed == "kit-imported"
    with pytest.raises(ConfigError, match="a probe or the reason"):
        SpeedWatch(probe=None)
    with pytest.raises(ConfigError, match="interval must be positive"):
        SpeedWatch(probe=lambda: None, interval_s=0)


def test_a_profile_without_a_probe_gives_a_watch_that_never_probes(synthetic_device):
    profile, folder = synthetic_device
    watch = SpeedWatch.of_profile(profile, folder / profile.device)
    assert watch.current() is None and "holds no speed probe" in watch.log().not_probed


def _proposals(driver, count: int) -> list:
    """``count`` proposals of the driver, told or not (the sampler's draws do not depend on them)."""
    for _ in range(count):
        driver._propose()
    return driver.study.get_trials(deepcopy=False)


def test_a_uniform_slow_down_changes_no_decision_under_a_fraction_budget(
    tiny_teacher, synthetic_device, tmp_path
):
    profile, _ = synthetic_device
    budget = Budget(latency_fraction=0.5)
    calm = make_driver(tiny_teacher, profile, tmp_path / "a", budget=budget, warm_start=False, seed=3)
    slow = make_driver(
        tiny_teacher, profile, tmp_path / "b", budget=budget, warm_start=False, seed=3,
        speed=SpeedWatch(probe=lambda: _probe(profile, lambda g: 2.0)),
    )  # fmt: skip
    assert slow.costs.teacher_now_ms == pytest.approx(2 * calm.costs.teacher_latency_ms)
    pairs = list(zip(_proposals(calm, 30), _proposals(slow, 30), strict=True))
    assert [a.params for a, _ in pairs] == [b.params for _, b in pairs]
    for a, b in pairs:
        assert (a.constraints["latency_ms"] > 0) == (b.constraints["latency_ms"] > 0)  # fits alike
        assert b.constraints["latency_ms"] == pytest.approx(
            2 * a.constraints["latency_ms"], rel=1e-6
        )  # in ms at twice the time
        assert b.user_attrs["predicted"]["latency_ms"] == a.user_attrs["predicted"]["latency_ms"]
    assert {a.constraints["latency_ms"] > 0 for a, _ in pairs} == {True, False}  # both kinds were drawn


def test_slow_int8_kernels_screen_out_int8_candidates_that_fit_as_calibrated(
    tiny_teacher, synthetic_device, tmp_path
):
    profile, _ = synthetic_device
    budget = Budget(latency_fraction=0.5)
    calm = make_driver(tiny_teacher, profile, tmp_path / "a", budget=budget, warm_start=False, seed=4)
    uneven = SpeedWatch(probe=lambda: _probe(profile, lambda g: 3.0 if g.endswith(W8A8) else 1.0))
    slow = make_driver(
        tiny_teacher, profile, tmp_path / "b", budget=budget, warm_start=False, seed=4, speed=uneven
    )
    assert slow.costs.teacher_now_ms == calm.costs.teacher_latency_ms  # a float teacher: no int8 kernel
    flipped = 0
    for a, b in zip(_proposals(calm, 60), _proposals(slow, 60), strict=True):
        predicted = b.user_attrs["predicted"]
        assert predicted["latency_ms"] == a.user_attrs["predicted"]["latency_ms"]  # the study's scale
        assert b.values is None or b.values[1] == predicted["latency_ms"]  # the objective on that scale
        assert b.constraints["latency_ms"] == pytest.approx(
            predicted["latency_now_ms"] - slow.budget.latency_ms
        )
        assert predicted["latency_now_ms"] >= predicted["latency_ms"]
        int8 = any(v == "w8a8" for v in b.params.values())
        if predicted["latency_now_ms"] > predicted["latency_ms"] * 1.0001:
            assert int8  # only int8 kernels were slowed
        if a.constraints["latency_ms"] <= 0 < b.constraints["latency_ms"]:
            flipped += 1
            assert int8 and b.user_attrs["fine_tuned"] is False  # told at once
    assert flipped > 0
    summary = slow.summary(0.0)
    assert summary.speed.probes == 1 and summary.speed.lowest == 1.0  # the median group: not int8
