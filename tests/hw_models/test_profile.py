"""Device profiles are checked when loaded: finite, positive, consistent, or one line saying so."""

from __future__ import annotations

import json
import math

import pytest

from paretone.errors import ConfigError
from paretone.hw_models import DeviceProfile, KernelMeasurement, LatencyModel, ModelMeasurement
from paretone.models import Kernel

LINEAR = Kernel.of("linear", tokens=5, **{"in": 8, "out": 8})


def _profile(tmp_path, *, kernel_ms: float = 0.1, model_ms: float = 0.5, baseline_ms: float = 0.01):
    profile = DeviceProfile(
        "d", {"threads": 1}, {"latency_ms": baseline_ms, "peak_bytes": 0, "file_bytes": 0}
    )
    profile.add_kernels([KernelMeasurement(LINEAR, kernel_ms, 400)])
    profile.add_models([ModelMeasurement("m", (LINEAR,), model_ms, 500, 1000)])
    path = tmp_path / "profile.json"
    data = profile.to_dict()
    data["kernels"][0]["latency_ms"] = kernel_ms
    data["models"][0]["latency_ms"] = model_ms
    path.write_text(json.dumps(data, allow_nan=True))
    return path


@pytest.mark.parametrize(
    "bad",
    [
        {"kernel_ms": -0.1},
        {"kernel_ms": math.nan},
        {"model_ms": math.inf},
        {"model_ms": 0.0},
        {"baseline_ms": -1.0},
    ],
)
def test_a_profile_holding_impossible_times_is_refused_at_load(tmp_path, bad):
    path = _profile(tmp_path, **bad)
    with pytest.raises(ConfigError, match=r"malformed device profile .*re-run `paretone calibrate`"):
        DeviceProfile.load(path)


def test_a_sound_profile_loads_and_predicts(tmp_path):
    profile = DeviceProfile.load(_profile(tmp_path))
    assert LatencyModel(profile).predict([LINEAR]).latency_ms > 0
