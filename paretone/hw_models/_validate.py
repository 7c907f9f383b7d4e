"""Validate a device profile on held-out random compressed models measured on this machine.

The models come from seeds calibration never uses, are exported with real kernels, timed in
interleaved passes and their peak memory measured in fresh processes; then predictions are compared
with measurements, beside two naive proxies a user might otherwise trust: MACs scaled to
milliseconds and parameters scaled to bytes (both fitted on the profile's own whole models, so the
comparison is fair to them).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from paretone.compress import Recipe
from paretone.errors import ConfigError
from paretone.hw_models._kit import Progress, export_model, random_models
from paretone.hw_models._latency import LatencyModel
from paretone.hw_models._memory import MemoryModel
from paretone.hw_models._probe import (
    ANCHOR_REPEATS,
    SpeedProbe,
    anchor_files,
    anchored_latencies,
    probe_speed,
)
from paretone.hw_models._profile import DeviceProfile, ModelMeasurement
from paretone.models import AudioModel, Kernel
from paretone.runtime import MemoryMeasurement, _kit_runner, measure_latencies_isolated, measure_memory

VALIDATION_SEED = 1000  # far from the calibration seed: no model is in both sets


@dataclass(frozen=True)
class ErrorStats:
    """Relative errors (predicted / measured - 1) over the validation models."""

    within_5pct: float
    within_10pct: float
    rmspe_pct: float
    worst_pct: float

    @classmethod
    def of(cls, predicted: list[float], measured: list[float]) -> ErrorStats:
        errors = np.array(predicted) / np.array(measured) - 1
        return cls(
            within_5pct=float(np.mean(np.abs(errors) <= 0.05)),
            within_10pct=float(np.mean(np.abs(errors) <= 0.10)),
            rmspe_pct=float(np.sqrt(np.mean(errors**2)) * 100),
            worst_pct=float(errors[np.argmax(np.abs(errors))] * 100),
        )


@dataclass(frozen=True)
class MemorySpread:
    """How much the memory measurements themselves vary between fresh processes (max - min), the
    median over models and the worst relative to the model's own rise beyond an empty session (the
    figure predicted): the floor under any error."""

    processes: int
    peak_range_bytes_median: float
    peak_range_pct_worst: float
    tensor_peak_range_bytes_median: float | None  # None: this onnxruntime records no allocator stats
    tensor_peak_range_pct_worst: float | None

    @classmethod
    def of(
        cls,
        memory: list[MemoryMeasurement],
        *,
        empty_peak_bytes: float = 0.0,
        empty_tensor_peak_bytes: float = 0.0,
    ) -> MemorySpread:
        """``empty_*``: an empty session's figures (the device profile's baseline), taken off each."""
        recorded = [
            m for m in memory if m.tensor_peak_range_bytes is not None and m.tensor_peak_bytes is not None
        ]
        return cls(
            processes=memory[0].processes,
            peak_range_bytes_median=float(np.median([m.peak_range_bytes for m in memory])),
            peak_range_pct_worst=100
            * max(m.peak_range_bytes / max(m.peak_bytes - empty_peak_bytes, 1) for m in memory),
            tensor_peak_range_bytes_median=float(np.median([m.tensor_peak_range_bytes for m in recorded]))
            if recorded
            else None,
            tensor_peak_range_pct_worst=100
            * max(
                m.tensor_peak_range_bytes / max(m.tensor_peak_bytes - empty_tensor_peak_bytes, 1)  # type: ignore[operator]
                for m in recorded
            )
            if recorded
            else None,
        )


@dataclass(frozen=True)
class ValidationReport:
    device: str
    models: int
    latency: ErrorStats
    model_bytes: ErrorStats
    peak_bytes: ErrorStats | None
    macs_proxy_latency: ErrorStats
    params_proxy_bytes: ErrorStats
    coverage: float  # lowest per-model kernel coverage
    drift: float | None  # calibration models now / in the profile (median); None if not re-measured
    latency_after_refit: ErrorStats | None  # per-model term refitted on the re-measured models
    seconds: float
    rows: list[dict[str, Any]]
    latency_speed_corrected: ErrorStats | None = None  # scaled by the speed probe taken beside them
    speed: dict[str, Any] | None = None  # the probe: factors per group, spread, its cost in seconds
    within_interval: float | None = None  # share of models measured inside their 95% interval
    latency_anchor_corrected: ErrorStats | None = None  # scaled by the probe's whole-model anchors
    latency_anchored_in_pass: ErrorStats | None = None  # against anchors timed inside every pass
    tensor_peak_bytes: ErrorStats | None = None  # ONNX Runtime's allocator peak, calibrated
    memory_spread: MemorySpread | None = None  # the memory measurements' own range between processes

    def worst(self, count: int = 3) -> list[dict[str, Any]]:
        return sorted(self.rows, key=lambda r: -abs(r["latency_error_pct"]))[:count]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _proxy_scale(x: list[float], y: list[float]) -> float:
    """Least-squares k minimising relative error of y ~ k * x (a proxy has no intercept)."""
    xs, ys = np.array(x, dtype=float), np.array(y, dtype=float)
    return float(np.sum(xs / ys) / np.sum((xs / ys) ** 2))


def _macs(kernels: tuple[Kernel, ...] | list[Kernel]) -> int:
    return sum(k.macs for k in kernels)


def _params(kernels: tuple[Kernel, ...] | list[Kernel]) -> int:
    return sum(k.params for k in kernels)


def compare(
    profile: DeviceProfile,
    held_out: list[ModelMeasurement],
    *,
    drift: float | None = None,
    refit: DeviceProfile | None = None,
    speed: SpeedProbe | None = None,
    calibration_speed_ms: list[float] | None = None,
    memory: list[MemoryMeasurement] | None = None,
    seconds: float = 0.0,
) -> ValidationReport:
    """Predictions fitted on ``profile`` against ``held_out`` measurements (none in the profile).

    ``refit``: the profile with whole models re-measured now, for the after-refit latency figures;
    ``speed``: a probe taken while they were measured, for the speed-corrected figures;
    ``calibration_speed_ms``: each held-out model's latency at the calibration's speed (from
    ``anchored_latencies``), for the in-pass anchored figures; ``memory``: each held-out model's
    memory measurement, for the measurements' own spread beside the predictions' errors.
    """
    for name, per_model in (("calibration_speed_ms", calibration_speed_ms), ("memory", memory)):
        if per_model is not None and len(per_model) != len(held_out):
            raise ValueError(f"{name} needs one entry per held-out model")
    overlap = {m.name for m in held_out} & set(profile.models)
    if overlap:
        raise ValueError(f"held-out models are in the profile: {sorted(overlap)[:3]}")
    if len(held_out) < 2 or len(profile.models) < 2:
        raise ConfigError("validation needs >= 2 held-out models and >= 2 whole models in the profile")
    latency_model, memory_model = LatencyModel(profile), MemoryModel(profile)
    fitted = list(profile.models.values())
    ms_per_mac = _proxy_scale([_macs(m.kernels) for m in fitted], [m.latency_ms for m in fitted])
    bytes_per_param = _proxy_scale([_params(m.kernels) for m in fitted], [m.file_bytes for m in fitted])
    empty_peak = float(profile.baseline.get("peak_bytes", 0))
    empty_tensors = float(profile.baseline.get("tensor_peak_bytes", 0))
    anchored_probe = speed.anchored() if speed is not None and speed.anchor_factor is not None else None
    rows = []
    for i, m in enumerate(held_out):
        lat, mem = latency_model.predict(m.kernels), memory_model.predict(m.kernels)
        # the prediction at the speed each model was timed in: scaled by measured / at-calibration
        in_pass = (
            None if calibration_speed_ms is None else lat.latency_ms * m.latency_ms / calibration_speed_ms[i]
        )
        now = latency_model.predict(m.kernels, speed=speed) if speed else None
        anchored = None if anchored_probe is None else latency_model.predict(m.kernels, speed=anchored_probe)
        rows.append(
            {
                "name": m.name,
                "recipe": m.recipe,
                "coverage": lat.coverage,
                "latency_ms": m.latency_ms,
                "predicted_latency_ms": lat.latency_ms,
                "latency_error_pct": (lat.latency_ms / m.latency_ms - 1) * 100,
                "speed_corrected_latency_ms": None if now is None else now.latency_ms,
                "anchor_corrected_latency_ms": None if anchored is None else anchored.latency_ms,
                "anchored_in_pass_latency_ms": in_pass,
                "interval_ms": (now or lat).interval_ms,
                "macs": _macs(m.kernels),
                "macs_proxy_latency_ms": _macs(m.kernels) * ms_per_mac,
                "file_bytes": m.file_bytes,
                "predicted_model_bytes": mem.model_bytes,
                "params": _params(m.kernels),
                "params_proxy_bytes": _params(m.kernels) * bytes_per_param,
                "peak_bytes": None if m.peak_bytes is None else m.peak_bytes - empty_peak,
                "predicted_peak_bytes": mem.peak_bytes,
                "tensor_peak_bytes": None
                if m.tensor_peak_bytes is None
                else m.tensor_peak_bytes - empty_tensors,
                "predicted_tensor_peak_bytes": mem.tensor_peak_bytes,
                "peak_range_bytes": None if memory is None else memory[i].peak_range_bytes,
                "tensor_peak_range_bytes": None if memory is None else memory[i].tensor_peak_range_bytes,
            }
        )
    with_peak = [r for r in rows if r["peak_bytes"] is not None and r["predicted_peak_bytes"] is not None]
    with_interval = [r for r in rows if r["interval_ms"] is not None]
    with_tensors = [
        r for r in rows if r["tensor_peak_bytes"] is not None and r["predicted_tensor_peak_bytes"] is not None
    ]

    def stats(predicted: str, measured: str, subset: list[dict[str, Any]]) -> ErrorStats:
        return ErrorStats.of([r[predicted] for r in subset], [r[measured] for r in subset])

    return ValidationReport(
        device=profile.device,
        models=len(rows),
        latency=stats("predicted_latency_ms", "latency_ms", rows),
        model_bytes=stats("predicted_model_bytes", "file_bytes", rows),
        peak_bytes=stats("predicted_peak_bytes", "peak_bytes", with_peak) if with_peak else None,
        macs_proxy_latency=stats("macs_proxy_latency_ms", "latency_ms", rows),
        params_proxy_bytes=stats("params_proxy_bytes", "file_bytes", rows),
        coverage=min(r["coverage"] for r in rows),
        drift=drift,
        latency_after_refit=None
        if refit is None
        else ErrorStats.of(
            [LatencyModel(refit).predict(m.kernels).latency_ms for m in held_out],
            [m.latency_ms for m in held_out],
        ),
        seconds=seconds,
        rows=rows,
        latency_speed_corrected=None
        if speed is None
        else stats("speed_corrected_latency_ms", "latency_ms", rows),
        speed=None
        if speed is None
        else {
            "factors": speed.factors,
            "spread": speed.spread,
            "seconds": speed.seconds,
            "anchor_factor": speed.anchor_factor,
            "anchor_spread": speed.anchor_spread,
        },
        within_interval=float(
            np.mean([r["interval_ms"][0] <= r["latency_ms"] <= r["interval_ms"][1] for r in with_interval])
        )
        if with_interval
        else None,
        latency_anchor_corrected=None
        if anchored_probe is None
        else stats("anchor_corrected_latency_ms", "latency_ms", rows),
        latency_anchored_in_pass=None
        if calibration_speed_ms is None
        else stats("anchored_in_pass_latency_ms", "latency_ms", rows),
        tensor_peak_bytes=stats("predicted_tensor_peak_bytes", "tensor_peak_bytes", with_tensors)
        if with_tensors
        else None,
        memory_spread=(
            MemorySpread.of(memory, empty_peak_bytes=empty_peak, empty_tensor_peak_bytes=empty_tensors)
            if memory
            else None
        ),
    )


def validate(
    profile: DeviceProfile,
    teacher: AudioModel,
    *,
    models: int = 40,
    passes: int = 5,
    memory: bool = True,
    drift_models: int = 8,
    probe_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> ValidationReport:
    """Export and measure ``models`` held-out random students of ``teacher`` here, and compare.

    ``drift_models`` of the profile's own whole models are re-exported and timed in the same passes:
    their latency now over their latency in the profile is the ``drift`` of this machine since it
    was calibrated (a shared or throttled CPU changes speed; a predictor cannot know that), and
    refitting the per-model term on them alone gives the ``latency_after_refit`` figures: what the
    search's measure-refit-continue loop recovers. With ``probe_dir`` (the profile's folder) and a
    profile holding a speed probe, the probe is taken just before and just after the timing passes
    and their geometric mean gives the ``latency_speed_corrected`` figures; the probe's anchors are
    also timed ``ANCHOR_REPEATS`` times in every pass, for the ``latency_anchored_in_pass`` figures.
    """
    if models < 2:
        raise ValueError("validation needs at least 2 models")
    profile.check_same_device(_kit_runner.fingerprint(profile.threads), "this machine")
    start = time.perf_counter()
    held_out = random_models(teacher, models, seed=VALIDATION_SEED, prefix="validation")
    again = [m for m in profile.models.values() if m.recipe is not None][:drift_models]
    probing = probe_dir is not None and bool(profile.probe)
    anchors = anchor_files(profile, probe_dir) * ANCHOR_REPEATS if probing and profile.anchors else []  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / f"{m.name}.onnx" for m in (*held_out, *again)]
        recipes = [m.recipe for m in held_out] + [Recipe.from_dict(m.recipe) for m in again]  # type: ignore[arg-type]
        for i, (path, recipe) in enumerate(zip(paths, recipes, strict=True)):
            export_model(teacher, recipe, path)
            if progress:
                progress("exporting models", i + 1, len(paths))
        before = after = None
        if probing:
            before = probe_speed(profile, probe_dir)  # type: ignore[arg-type]
        # in a fresh process, as calibration measured the profile and as `pick` measures
        timings = measure_latencies_isolated(paths + anchors, threads=profile.threads, passes=passes)
        if probing:
            after = probe_speed(profile, probe_dir)  # type: ignore[arg-type]
        measured, memories = [], []
        for i, (model, path, timing) in enumerate(zip(held_out, paths, timings, strict=False)):
            mem = measure_memory(path, threads=profile.threads) if memory else None
            if mem is not None:
                memories.append(mem)
            measured.append(
                ModelMeasurement(
                    model.name,
                    model.kernels,
                    timing.latency_ms,
                    path.stat().st_size,
                    None if mem is None else mem.peak_bytes,
                    source="validation",
                    recipe=model.recipe.to_dict(),
                    tensor_peak_bytes=None if mem is None else mem.tensor_peak_bytes,
                )
            )
            if progress:
                progress("measuring peak memory" if memory else "collecting", i + 1, models)
    now = timings[len(held_out) : len(paths)]
    in_pass = None
    if anchors:
        reference_ms = [profile.models[a.name].latency_ms for a in profile.anchors] * ANCHOR_REPEATS
        in_pass = anchored_latencies(timings[: len(held_out)], timings[len(paths) :], reference_ms)
    drift, refit = None, None
    if again:
        drift = float(np.median([t.latency_ms / m.latency_ms for t, m in zip(now, again, strict=True)]))
        refit = DeviceProfile(profile.device, profile.fingerprint, profile.baseline, profile.kernels)
        refit.add_models(
            [replace(m, latency_ms=t.latency_ms, source="refit") for t, m in zip(now, again, strict=True)]
        )
    speed = None if before is None or after is None else before.combined(after)
    return compare(
        profile,
        measured,
        drift=drift,
        refit=refit,
        speed=speed,
        calibration_speed_ms=in_pass,
        memory=memories or None,
        seconds=time.perf_counter() - start,
    )
