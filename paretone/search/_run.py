"""One call that runs a search: check everything that can be refused, make sure the device is
calibrated, then drive the study.

Refusals come first and write nothing: the storage is checked, and a resumed study's teacher,
space and budget are compared with the request, before a device profile is extended or Ray starts.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

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
from paretone.search._attrs import StudyInfo
from paretone.search._budget import ResolvedBudget
from paretone.search._driver import Driver
from paretone.search._settings import SearchSettings, SearchSummary, Status
from paretone.search._speed import SpeedWatch
from paretone.search._study import check_resumable, check_storage, load_study_to_resume
from paretone.search._workers import check_gpus
from paretone.spaces import SearchSpace

LOCAL_DEVICE = "local"
Progress = Callable[[str, int, int], None]


def ensure_profile(
    settings: SearchSettings,
    *,
    device: str,
    profile_dir: str | os.PathLike[str],
    progress: Progress | None = None,
) -> DeviceProfile:
    """The device's profile, covering every kernel of the teacher's students.

    The ``local`` device (this machine) is calibrated or extended on the spot; any other device
    must have been calibrated (on it, with a kit) beforehand.
    """
    path = profile_path(profile_dir, device)
    teacher = load_model(settings.teacher).model.eval()
    operators = dict(SearchSpace.build(teacher.structure(), settings.space, teacher=teacher.config).params)
    chunk = settings.chunk_samples(teacher.config.front_end.sample_rate)
    needed = {k.key for k in calibration_kernels(teacher.config, operators, chunk_samples=chunk)}
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
    calibrate(
        device=device,
        profile_dir=profile_dir,
        teacher=teacher,
        operators=operators,
        chunk_samples=chunk,
        progress=progress,
    )
    return DeviceProfile.load(path)


def precheck(settings: SearchSettings) -> None:
    """Refuse, writing nothing, what the driver would refuse only after calibrating."""
    check_storage(settings.storage)
    if settings.gpus_per_worker > 0 and settings.ray_address is None:  # a cluster's are checked on joining
        import torch

        check_gpus(settings.gpus_per_worker, torch.cuda.device_count(), "this machine")
    loaded = load_model(settings.teacher)
    space = SearchSpace.build(
        loaded.model.structure(), settings.space, teacher=loaded.model.config
    )  # errors here
    trials = settings.runs_dir / settings.study / "trials"
    if not settings.resume:
        if trials.is_dir() and any(trials.iterdir()):
            raise ConfigError(
                f"{trials} holds trial folders of an earlier study; move it away or choose another --study"
            )
        return
    study = load_study_to_resume(settings.study, settings.storage)
    stored = StudyInfo.read(study, settings.folder)
    ours = StudyInfo(
        settings.teacher,
        {k: v for k, v in space.to_dict().items() if k != "paretone_version"},
        ResolvedBudget(settings.budget, stored.budget.latency_ms, stored.budget.teacher_latency_ms),
        stored.device,
        loaded.task,
        chunk_samples=settings.chunk_samples(loaded.model.config.front_end.sample_rate),
    )
    check_resumable(study, ours, settings)


def run_search(
    settings: SearchSettings,
    *,
    device: str = LOCAL_DEVICE,
    profile_dir: str | os.PathLike[str] = Path("runs") / "devices",
    status: Status | None = None,
    calibration_progress: Progress | None = None,
    sensitivity_progress: Progress | None = None,
) -> SearchSummary:
    precheck(settings)
    profile = ensure_profile(settings, device=device, profile_dir=profile_dir, progress=calibration_progress)
    if settings.probe_every_s > 0:
        speed = SpeedWatch.of_profile(
            profile, profile_path(profile_dir, device).parent, interval_s=settings.probe_every_s
        )
    else:
        speed = SpeedWatch(probe=None, not_probed="--probe-every-s 0 asked for the calibrated speed")
    driver = Driver(
        settings,
        latency=LatencyModel(profile),
        memory=MemoryModel(profile),
        device=device,
        status=status,
        sensitivity_progress=sensitivity_progress,
        speed=speed,
    )
    return driver.run()
