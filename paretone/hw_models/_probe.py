"""The speed probe: how fast this device runs *now*, per group of kernels, against calibration.

A shared VM, a phone or an edge box changes speed for minutes at a time (frequency scaling, thermal
throttling, a neighbour on the host), and not evenly: on this machine kind int8 and GELU kernels
slow down by up to 1.7x while fp32 GEMMs do not. A profile measured in one speed state then
mispredicts in another. The probe times one sentinel kernel per group the profile holds (a group is
a kernel kind in one runtime format: fp32 linear, w8a8 linear, each n-bit MatMulNBits, GELU, each
front-end implementation, ...) in interleaved passes, well under a second in all; the sentinels'
times now over their times when the profile was calibrated (measured by this same probe, so the
method cancels) are the device's current speed per group, which ``LatencyModel`` multiplies into
each kernel's prediction.

The sentinels' micro-models are written once beside the profile (``probe/``), so probing again
costs only the timing. A profile imported from a calibration kit has no probe (the probe must run
on the device itself); asking it for speed is an error that says so.
"""

from __future__ import annotations

import hashlib
import math
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from paretone.errors import ConfigError
from paretone.hw_models._micro import save_micro_model
from paretone.hw_models._profile import DeviceProfile, Sentinel
from paretone.models import Kernel
from paretone.runtime import measure_latencies

PROBE_DIR = "probe"
SENTINEL_MS = 0.3  # aim: a sentinel's own time near this, timed well above the clock's noise
PROBE_PASSES, PROBE_RUNS = 3, 15


def group_of(kernel: Kernel) -> str:
    """The speed group of a kernel: its kind in one runtime format (the latency model's regressor)."""
    return f"{kernel.kind}/{kernel.format}"


@dataclass(frozen=True)
class SpeedProbe:
    """The device's speed now: per group, the sentinel's time now over at calibration (1.2: 20%
    slower than when calibrated), and its spread (half the p10-p90 range over its median)."""

    factors: dict[str, float]
    spread: dict[str, float]
    seconds: float  # what probing cost

    @property
    def overall(self) -> float:
        """The median group's factor: what the per-run overhead and any unprobed group get."""
        return statistics.median(self.factors.values())

    def combined(self, other: SpeedProbe) -> SpeedProbe:
        """Two probes around one campaign: the geometric mean of their factors, the wider spread."""
        return SpeedProbe(
            factors={g: math.sqrt(f * other.factors.get(g, f)) for g, f in self.factors.items()},
            spread={g: max(v, other.spread.get(g, v)) for g, v in self.spread.items()},
            seconds=self.seconds + other.seconds,
        )

    def factor(self, kernel: Kernel) -> float:
        return self.factors.get(group_of(kernel), self.overall)


def choose_sentinels(profile: DeviceProfile) -> list[Kernel]:
    """One measured kernel per group: the one whose own time is nearest ``SENTINEL_MS``."""
    baseline = float(profile.baseline.get("latency_ms", 0.0))
    by_group: dict[str, list[tuple[float, Kernel]]] = {}
    for m in profile.kernels.values():
        by_group.setdefault(group_of(m.kernel), []).append((max(m.latency_ms - baseline, 0.0), m.kernel))
    return [
        min(members, key=lambda pair: (abs(pair[0] - SENTINEL_MS), pair[1].key))[1]
        for _, members in sorted(by_group.items())
    ]


def _sentinel_files(folder: Path, kernels: list[Kernel]) -> list[Path]:
    """The sentinels' micro-models, written on first use (named by the kernel's key, so a file is
    never taken for another shape)."""
    paths = []
    for kernel in kernels:
        digest = hashlib.sha256(kernel.key.encode()).hexdigest()[:12]
        path = folder / PROBE_DIR / f"{group_of(kernel).replace('/', '-')}-{digest}.onnx"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            save_micro_model(kernel, path)
        paths.append(path)
    return paths


def _time(paths: list[Path], threads: int) -> tuple[list[float], list[float], float]:
    start = time.perf_counter()
    measured = measure_latencies(paths, threads=threads, passes=PROBE_PASSES, runs=PROBE_RUNS, warmup=3)
    spread = [(m.p90_ms - m.p10_ms) / 2 / m.median_ms if m.median_ms > 0 else 0.0 for m in measured]
    return [m.latency_ms for m in measured], spread, time.perf_counter() - start


def record_probe(profile: DeviceProfile, folder: str | os.PathLike[str]) -> int:
    """Time a sentinel now for every group the probe lacks, as the profile's reference speed; called
    at the end of calibration, when the group's kernels were just measured. Groups the probe already
    has keep their reference (their kernels were measured then). Returns how many were added."""
    known = {s.group for s in profile.probe}
    kernels = [k for k in choose_sentinels(profile) if group_of(k) not in known]
    if not kernels:
        return 0
    times, _, _ = _time(_sentinel_files(Path(folder), kernels), profile.threads)
    profile.probe += [Sentinel(group_of(k), k, ms) for k, ms in zip(kernels, times, strict=True)]
    return len(kernels)


def probe_speed(profile: DeviceProfile, folder: str | os.PathLike[str]) -> SpeedProbe:
    """Time the profile's sentinels now; ConfigError if the profile holds no probe."""
    if not profile.probe:
        raise ConfigError(
            f"device profile {profile.device!r} holds no speed probe (imported from a kit, or written "
            f"before probes); run `paretone calibrate --device {profile.device}` on the device to record one"
        )
    kernels = [s.kernel for s in profile.probe]
    times, spread, seconds = _time(_sentinel_files(Path(folder), kernels), profile.threads)
    return SpeedProbe(
        factors={s.group: now / s.latency_ms for s, now in zip(profile.probe, times, strict=True)},
        spread={s.group: value for s, value in zip(profile.probe, spread, strict=True)},
        seconds=seconds,
    )
