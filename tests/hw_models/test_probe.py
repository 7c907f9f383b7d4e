"""The speed probe's arithmetic on a profile with known kernel times, and the probe for real."""

from __future__ import annotations

import pytest

from paretone.errors import ConfigError
from paretone.hw_models import (
    LatencyModel,
    SpeedProbe,
    anchored_latencies,
    group_of,
    probe_speed,
    random_models,
)
from paretone.models import ASTConfig, build_model
from paretone.runtime import LatencyMeasurement
from tests.helpers import synthetic_profile


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    teacher = build_model(ASTConfig.uniform(num_classes=10, dim=32, depth=1, heads=2, mlp_ratio=2)).eval()
    profile = synthetic_profile(teacher, tmp_path_factory.mktemp("devices"), "known", ns_per_mac=1.0)
    student = random_models(teacher, 1, seed=5, prefix="student")[0]
    return profile, student


def _probe(profile, factor_of, spread=0.0) -> SpeedProbe:
    groups = {group_of(m.kernel) for m in profile.kernels.values()}
    return SpeedProbe({g: factor_of(g) for g in groups}, {g: spread for g in groups}, 0.1)


def test_a_uniformly_slower_device_scales_the_whole_prediction(setting):
    profile, student = setting
    model = LatencyModel(profile)
    raw = model.predict(student.kernels)
    slower = model.predict(student.kernels, speed=_probe(profile, lambda g: 1.5))
    assert slower.speed_corrected and not raw.speed_corrected
    assert slower.latency_ms == pytest.approx(1.5 * raw.latency_ms, rel=1e-6)


def test_each_kernel_is_scaled_by_its_own_group(setting):
    profile, student = setting
    model = LatencyModel(profile)
    slow_group = group_of(max(student.kernels, key=lambda k: model.kernel_ms(k) or 0))
    share = sum(model.kernel_ms(k) for k in student.kernels if group_of(k) == slow_group)
    raw = model.predict(student.kernels)
    uneven = model.predict(student.kernels, speed=_probe(profile, lambda g: 2.0 if g == slow_group else 1.0))
    # only that group's kernels doubled: the whole model grows by the slope times their share
    assert uneven.latency_ms - raw.latency_ms == pytest.approx(model.slope * share, rel=1e-6)


def test_the_interval_comes_from_residuals_and_widens_with_the_probes_spread(setting):
    profile, student = setting
    model = LatencyModel(profile)
    raw = model.predict(student.kernels)
    assert model.relative_error is not None and raw.interval_ms is not None
    low, high = raw.interval_ms
    assert low <= raw.latency_ms <= high
    noisy = model.predict(student.kernels, speed=_probe(profile, lambda g: 1.0, spread=0.2))
    assert noisy.interval_ms[1] - noisy.interval_ms[0] > high - low
    assert noisy.straddles(noisy.latency_ms) and not noisy.straddles(2 * noisy.interval_ms[1])


def test_a_profile_without_a_probe_says_how_to_record_one(setting, tmp_path):
    profile, _ = setting
    with pytest.raises(ConfigError, match="run `paretone calibrate --device known` on the device"):
        probe_speed(profile, tmp_path)


def test_the_cost_model_predicts_at_both_speeds_and_keeps_the_calibrated_one_as_the_scale(setting):
    from paretone.compress import Recipe
    from paretone.hw_models import MemoryModel
    from paretone.search._costs import CostModel

    profile, student = setting
    latency, memory = LatencyModel(profile), MemoryModel(profile)
    teacher = build_model(ASTConfig.uniform(num_classes=10, dim=32, depth=1, heads=2, mlp_ratio=2))
    calibrated = CostModel(teacher.config, latency=latency, memory=memory, device="known")
    slower = CostModel(
        teacher.config, latency=latency, memory=memory, device="known", speed=_probe(profile, lambda g: 1.5)
    )
    assert slower.teacher_latency_ms == calibrated.teacher_latency_ms  # what a budget resolves against
    assert slower.teacher_now_ms == pytest.approx(1.5 * calibrated.teacher_latency_ms, rel=1e-6)
    recipe = Recipe.from_dict(student.recipe.to_dict())
    now, then = slower.cost(recipe).predicted, calibrated.cost(recipe).predicted
    assert now.speed_factor == pytest.approx(1.5) and then.speed_factor is None
    assert now.latency_ms == then.latency_ms and then.latency_now_ms is None
    assert now.screened_latency_ms == now.latency_now_ms == pytest.approx(1.5 * then.latency_ms, rel=1e-6)
    assert then.screened_latency_ms == then.latency_ms
    low, high = now.latency_interval_ms  # around what the budget is checked against
    assert low < now.latency_now_ms < high and not low < then.latency_ms < high
    slower.set_speed(None)
    assert slower.teacher_now_ms == calibrated.teacher_latency_ms
    assert slower.cost(recipe).predicted == then


def _timed(pass_ms: list[float], pass_at_s: list[float]) -> LatencyMeasurement:
    return LatencyMeasurement(
        min(pass_ms), sorted(pass_ms)[len(pass_ms) // 2], min(pass_ms), max(pass_ms), 1, 1, len(pass_ms),
        pass_ms=tuple(pass_ms), pass_at_s=tuple(pass_at_s),
    )  # fmt: skip


def test_anchors_in_the_passes_undo_a_speed_change_inside_the_campaign():
    # The device runs at calibration speed for the first two passes, then 1.6x slower. Anchors
    # (references 4 and 10 ms) were timed beside the models in every pass; a model of 5 ms at
    # calibration speed reads 5, 5, 8, 8, 8 ms. Its quietest pass says 5 (by luck of the order); a
    # probe around the campaign would say "1.6x at the end, 1x at the start". In-pass: exactly 5.
    speed = [1.0, 1.0, 1.6, 1.6, 1.6]
    anchors = [
        _timed([4 * f for f in speed], [10, 70, 130, 190, 250]),
        _timed([10 * f for f in speed], [30, 90, 150, 210, 270]),
        _timed([4 * f for f in speed], [50, 110, 170, 230, 290]),
    ]
    model = _timed([5 * f for f in speed], [20, 80, 140, 200, 260])
    late = _timed([3 * 1.6, 3 * 1.6], [200, 280])  # timed only in slow passes: 3 ms at calibration
    assert anchored_latencies([model, late], anchors, [4, 10, 4]) == pytest.approx([5, 3])
    # with the farther anchors' samples outvoting the near ones, the correction is wrong: the nearest
    # samples decide (one nearest sample: only the anchor beside each pass)
    assert anchored_latencies([late], anchors, [4, 10, 4], nearest=1) == pytest.approx([3])
    with pytest.raises(ValueError, match="needs anchors timed in the same passes"):
        anchored_latencies([model], [], [])
