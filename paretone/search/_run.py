"""One call that runs a search: make sure the device is calibrated, then drive the study."""

from __future__ import annotations

import os
from collections.abc import Callable

from paretone.errors import ConfigError
from paretone.hw_models import (
    DeviceProfile,
    LatencyModel,
    MemoryModel,
    calibrate,
    calibration_kernels,
    is_outdated,
    profile_path,
)
from paretone.models import load_model
from paretone.search._driver import Driver, SearchSettings, SearchSummary, Status

LOCAL_DEVICE = "local"


def ensure_profile(
    settings: SearchSettings,
    *,
    device: str,
    profile_dir: str | os.PathLike[str],
    progress: Callable[[str, int, int], None] | None = None,
) -> DeviceProfile:
    """The device's profile, covering every kernel of the teacher's students.

    The ``local`` device (this machine) is calibrated or extended on the spot; any other device
    must have been calibrated (on it, with a kit) beforehand.
    """
    path = profile_path(profile_dir, device)
    teacher = load_model(settings.teacher).model.eval()
    needed = {k.key for k in calibration_kernels(teacher.config)}
    outdated = device == LOCAL_DEVICE and is_outdated(path)  # recalibrated below, old file kept
    profile = DeviceProfile.load(path) if path.exists() and not outdated else None
    if profile is not None and needed <= set(profile.kernels) and profile.models:
        return profile
    if device != LOCAL_DEVICE:
        state = "has no profile" if profile is None else "does not cover this teacher's kernels"
        raise ConfigError(
            f"device {device!r} {state}: run `paretone calibrate --kit DIR --teacher {settings.teacher}` and "
            f"import its results on that device, or search for --device {LOCAL_DEVICE}"
        )
    calibrate(device=device, profile_dir=profile_dir, teacher=teacher, progress=progress)
    return DeviceProfile.load(path)


def run_search(
    settings: SearchSettings,
    *,
    device: str = LOCAL_DEVICE,
    profile_dir: str | os.PathLike[str] = "runs/devices",
    status: Status | None = None,
    calibration_progress: Callable[[str, int, int], None] | None = None,
) -> SearchSummary:
    profile = ensure_profile(settings, device=device, profile_dir=profile_dir, progress=calibration_progress)
    driver = Driver(
        settings, latency=LatencyModel(profile), memory=MemoryModel(profile), device=device, status=status
    )
    return driver.run()
