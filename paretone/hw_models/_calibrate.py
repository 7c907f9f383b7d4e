"""Calibrate this machine: build the kit, measure it in a fresh process, merge it into the device profile."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from paretone.compress import Param
from paretone.hw_models._kit import Progress, merge_results, random_models, read_results, write_kit
from paretone.hw_models._probe import record_probe
from paretone.hw_models._profile import DeviceProfile, is_outdated, profile_path
from paretone.hw_models._sweep import calibration_kernels
from paretone.models import AudioModel
from paretone.runtime import _kit_runner, run_kit_in_fresh_process

CALIBRATION_SEED = 0  # whole models for fitting; validation uses other seeds


@dataclass(frozen=True)
class CalibrationSummary:
    profile: Path
    kernels_added: int
    models_added: int
    kernels_total: int
    models_total: int
    seconds: float


def _load_or_new(path: Path, device: str, threads: int) -> DeviceProfile:
    here = _kit_runner.fingerprint(threads)
    if is_outdated(path):
        path.replace(path.with_suffix(".old.json"))  # kept, not extended: its kernels are stale
    if not path.exists():
        return DeviceProfile(device, here)
    profile = DeviceProfile.load(path)
    profile.check_same_device(here, "this machine")
    return profile


def calibrate(
    *,
    device: str,
    profile_dir: str | os.PathLike[str],
    teacher: AudioModel,
    threads: int = 1,
    models: int = 12,
    passes: int = 5,
    operators: Mapping[str, Sequence[Param]] | None = None,
    chunk_samples: int | None = None,
    progress: Progress | None = None,
) -> CalibrationSummary:
    """Measure every kernel compression can make of ``teacher`` and ``models`` random whole models.

    Re-running extends the profile: kernels and models it already holds are not measured again, so
    calibrating for a second teacher adds its shapes, and an interrupted run picks up where it
    stopped (the kit's results file keeps what was measured).
    """
    if threads < 1 or models < 0 or passes < 1:
        raise ValueError("threads and passes must be >= 1, models >= 0")
    start = time.perf_counter()
    path = profile_path(profile_dir, device)
    profile = _load_or_new(path, device, threads)
    wanted = calibration_kernels(teacher.config, operators, chunk_samples=chunk_samples)
    kernels = [k for k in wanted if k.key not in profile.kernels]
    kit_models = [
        m
        for m in random_models(teacher, models, seed=CALIBRATION_SEED, prefix="calibration")
        if m.name not in profile.models
    ]
    work = path.parent / "kit-work"
    write_kit(
        work,
        kernels=kernels,
        teacher=teacher,
        models=kit_models,
        threads=threads,
        passes=passes,
        progress=progress,
    )
    run_kit_in_fresh_process(
        work,
        work / "results.json",
        progress=None if progress is None else (lambda done, total: progress("measuring", done, total)),
    )
    profile = merge_results(profile, device, read_results(work / "results.json"), "this machine")
    if progress:
        progress("recording the speed probe", 0, 1)
    # the device's speed now, as its kernels were just measured
    record_probe(profile, path.parent, teacher=teacher)
    profile.save(path)
    shutil.rmtree(work)
    return CalibrationSummary(
        profile=path,
        kernels_added=len(kernels),
        models_added=len(kit_models),
        kernels_total=len(profile.kernels),
        models_total=len(profile.models),
        seconds=time.perf_counter() - start,
    )


def import_results(
    results_file: str | os.PathLike[str], *, device: str, profile_dir: str | os.PathLike[str]
) -> CalibrationSummary:
    """Merge a remote device's ``run_kit.py`` output into the profile of ``device``."""
    start = time.perf_counter()
    path = profile_path(profile_dir, device)
    existing = DeviceProfile.load(path) if path.exists() else None
    before_k, before_m = (len(existing.kernels), len(existing.models)) if existing else (0, 0)
    profile = merge_results(existing, device, read_results(results_file), str(results_file))
    profile.save(path)
    return CalibrationSummary(
        profile=path,
        kernels_added=len(profile.kernels) - before_k,
        models_added=len(profile.models) - before_m,
        kernels_total=len(profile.kernels),
        models_total=len(profile.models),
        seconds=time.perf_counter() - start,
    )
