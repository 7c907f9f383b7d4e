"""The speed probe's arithmetic on a profile with known kernel times, and the probe for real."""

from __future__ import annotations

import pytest

from paretone.errors import ConfigError
from paretone.hw_models import LatencyModel, SpeedProbe, group_of, probe_speed, random_models
from paretone.models import ASTConfig, build_model
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


def test_the_cost_model_predicts_at_the_speed_it_is_given_and_records_it(setting):
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
    assert slower.teacher_latency_ms == pytest.approx(1.5 * calibrated.teacher_latency_ms, rel=1e-6)
    recipe = Recipe.from_dict(student.recipe.to_dict())
    now, then = slower.cost(recipe).predicted, calibrated.cost(recipe).predicted
    assert now.speed_factor == pytest.approx(1.5) and then.speed_factor is None
    assert now.latency_ms == pytest.approx(1.5 * then.latency_ms, rel=1e-6)
    low, high = now.latency_interval_ms
    assert low < now.latency_ms < high
