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

Sentinels are short (about 0.3 ms), and a short run on a shared core sees a neighbour's bursts that
a longer model averages out (measured: under load the sentinels slowed 1.45x, whole models 1.08x).
So the probe also times a few **anchors**, whole calibration models of the profile spanning its
latency range, in the same interleaved passes; their median ratio is the whole-model speed
(``anchor_factor``), and ``anchored()`` is the probe that scales every kernel by it alone.

A probe before and after a campaign still misses a speed change inside it (measured: a 7-minute
validation campaign on this machine kind). So validation also times the anchors *inside* its
passes, several times each, and ``anchored_latencies`` divides every pass's time of a model by the
speed the anchors timed nearest to it showed: the model's latency at the calibration's speed.

The sentinels' micro-models and the anchors' ONNX files are written once beside the profile
(``probe/``), so probing again costs only the timing. A profile imported from a calibration kit
has no probe (the probe must run on the device itself); asking it for speed is an error that says so.
"""

from __future__ import annotations

import hashlib
import math
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from paretone.compress import Recipe
from paretone.errors import ConfigError
from paretone.hw_models._kit import export_model
from paretone.hw_models._micro import save_micro_model
from paretone.hw_models._profile import Anchor, DeviceProfile, Sentinel
from paretone.models import AudioModel, Kernel
from paretone.runtime import LatencyMeasurement, fingerprint, measure_latencies

PROBE_DIR = "probe"
SENTINEL_MS = 0.3  # aim: a sentinel's own time near this, timed well above the clock's noise
PROBE_PASSES, PROBE_RUNS = 3, 15
ANCHORS = 4  # whole models timed beside the sentinels, spread over the profile's latency range
ANCHOR_REPEATS = 3  # times each anchor is timed per validation pass: one is never far from a model
NEAREST_ANCHORS = 3  # anchor timings whose median speed corrects one pass of a model


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
    anchor_factor: float | None = None  # the anchors' median time now over at calibration
    anchor_spread: float = 0.0  # the anchors' own spread (median over anchors)

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
            anchor_factor=None
            if self.anchor_factor is None or other.anchor_factor is None
            else math.sqrt(self.anchor_factor * other.anchor_factor),
            anchor_spread=max(self.anchor_spread, other.anchor_spread),
        )

    def anchored(self) -> SpeedProbe:
        """Every group at the anchors' whole-model speed (ConfigError if the probe timed none)."""
        if self.anchor_factor is None:
            raise ConfigError(
                "this speed probe timed no anchor models; re-run `paretone calibrate` on the device "
                "with a teacher to record them"
            )
        return SpeedProbe(
            factors=dict.fromkeys(self.factors, self.anchor_factor),
            spread=dict.fromkeys(self.factors, self.anchor_spread),
            seconds=self.seconds,
            anchor_factor=self.anchor_factor,
            anchor_spread=self.anchor_spread,
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


def choose_anchors(profile: DeviceProfile, count: int = ANCHORS) -> list[str]:
    """Calibration models with a recipe, evenly spaced over their measured latency (names)."""
    members = sorted(
        (m for m in profile.models.values() if m.recipe is not None and m.source == "calibration"),
        key=lambda m: (m.latency_ms, m.name),
    )
    if len(members) <= count:
        return [m.name for m in members]
    step = (len(members) - 1) / (count - 1)
    return [members[round(i * step)].name for i in range(count)]


def _anchor_file(folder: Path, name: str) -> Path:
    return folder / PROBE_DIR / f"anchor-{name}.onnx"


def anchor_files(profile: DeviceProfile, folder: str | os.PathLike[str]) -> list[Path]:
    """The anchors' ONNX files beside the profile, in ``profile.anchors`` order (ConfigError if one
    is gone: re-calibrating writes it again)."""
    paths = [_anchor_file(Path(folder), a.name) for a in profile.anchors]
    for path in paths:
        if not path.is_file():
            raise ConfigError(
                f"{path}: the speed probe's anchor model is missing; re-run `paretone calibrate --device "
                f"{profile.device} --teacher DIR` to write it again"
            )
    return paths


def anchored_latencies(
    measured: list[LatencyMeasurement],
    anchors: list[LatencyMeasurement],
    reference_ms: list[float],
    *,
    nearest: int = NEAREST_ANCHORS,
) -> list[float]:
    """Each of ``measured`` at the calibration's speed, from anchors timed in the same passes.

    ``anchors[i]`` timed a whole model whose latency at calibration was ``reference_ms[i]``; every
    one of its passes is a speed sample (time now over then) at the moment it ran. Each pass of a
    model is divided by the median of the ``nearest`` samples closest to it in time, and the model's
    corrected latency is the median over its passes (a pass that a burst hit stays an outlier).
    Needs ``pass_ms``/``pass_at_s`` from ``measure_latencies``; ValueError without anchors.
    """
    samples = [
        (at, ms / ref)
        for timing, ref in zip(anchors, reference_ms, strict=True)
        for ms, at in zip(timing.pass_ms, timing.pass_at_s, strict=True)
    ]
    if not samples or nearest < 1:
        raise ValueError("anchored_latencies needs anchors timed in the same passes and nearest >= 1")
    corrected = []
    for m in measured:
        per_pass = []
        for ms, at in zip(m.pass_ms, m.pass_at_s, strict=True):
            close = sorted(samples, key=lambda sample: abs(sample[0] - at))[:nearest]
            per_pass.append(ms / statistics.median(ratio for _, ratio in close))
        corrected.append(statistics.median(per_pass))
    return corrected


def sentinel_files(folder: Path, kernels: list[Kernel]) -> list[Path]:
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


def record_probe(
    profile: DeviceProfile, folder: str | os.PathLike[str], *, teacher: AudioModel | None = None
) -> int:
    """Time a sentinel now for every group the probe lacks, as the profile's reference speed; called
    at the end of calibration, when the group's kernels were just measured. Groups the probe already
    has keep their reference (their kernels were measured then). With ``teacher`` and no anchors yet,
    the anchors are exported from their recipes and timed too. Returns how many were added."""
    known = {s.group for s in profile.probe}
    kernels = [k for k in choose_sentinels(profile) if group_of(k) not in known]
    anchors = choose_anchors(profile) if teacher is not None and not profile.anchors else []
    if not kernels and not anchors:
        return 0
    paths = sentinel_files(Path(folder), kernels)
    for name in anchors:
        path = _anchor_file(Path(folder), name)
        path.parent.mkdir(parents=True, exist_ok=True)
        export_model(teacher, Recipe.from_dict(profile.models[name].recipe), path)  # type: ignore[arg-type]
        paths.append(path)
    times, _, _ = _time(paths, profile.threads)
    sentinel_times = times[: len(kernels)]
    profile.probe += [Sentinel(group_of(k), k, ms) for k, ms in zip(kernels, sentinel_times, strict=True)]
    profile.anchors += [Anchor(name, ms) for name, ms in zip(anchors, times[len(kernels) :], strict=True)]
    return len(kernels) + len(anchors)


def unprobeable_reason(profile: DeviceProfile) -> str | None:
    """Why this machine cannot probe the profile's device (None: it can). The probe times the
    sentinels here, so it describes the device only when the profile was calibrated here."""
    if not profile.probe:
        return f"device profile {profile.device!r} holds no speed probe (imported from a kit, or older)"
    try:
        profile.check_same_device(fingerprint(profile.threads), "this machine")
    except ConfigError:
        return f"device {profile.device!r} is not this machine (its profile was measured elsewhere)"
    return None


def probe_speed(profile: DeviceProfile, folder: str | os.PathLike[str]) -> SpeedProbe:
    """Time the profile's sentinels and anchors now, in the same interleaved passes; ConfigError if
    the profile holds no probe or an anchor's file is gone."""
    if not profile.probe:
        raise ConfigError(
            f"device profile {profile.device!r} holds no speed probe (imported from a kit, or written "
            f"before probes); run `paretone calibrate --device {profile.device}` on the device to record one"
        )
    anchor_paths = anchor_files(profile, folder)
    sentinels = sentinel_files(Path(folder), [s.kernel for s in profile.probe])
    times, spread, seconds = _time(sentinels + anchor_paths, profile.threads)
    n = len(profile.probe)
    anchor_ratios = [now / a.latency_ms for a, now in zip(profile.anchors, times[n:], strict=True)]
    return SpeedProbe(
        factors={s.group: now / s.latency_ms for s, now in zip(profile.probe, times[:n], strict=True)},
        spread={s.group: value for s, value in zip(profile.probe, spread[:n], strict=True)},
        seconds=seconds,
        anchor_factor=statistics.median(anchor_ratios) if anchor_ratios else None,
        anchor_spread=statistics.median(spread[n:]) if anchor_ratios else 0.0,
    )
