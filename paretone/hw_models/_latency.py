"""Latency prediction: per-kernel regressors plus a per-model term, fitted from a device profile.

Each (kernel kind, format) pair gets its own regressor over the kernel's shape, fitted on the
kernel's own time (micro-model median minus the empty-session baseline). A whole model is the sum
of its kernels, mapped through a linear correction ``a * sum + b`` learnt from measured whole
models: ``b`` is the per-run overhead and ``a`` what isolated kernels miss (caches warm across
kernels, fused Q/DQ pairs between int8 layers).

A kernel whose pair was never measured, or whose shape lies outside the measured range, cannot be
predicted: it is reported (``coverage`` < 1, by name), never silently dropped.

Given a ``SpeedProbe`` (``_probe.py``), each kernel's time is scaled by its group's speed now against
calibration, and the per-run overhead by the median group's. Every prediction carries a 95%
interval: the whole-model fit's relative residual, widened by the probe's spread when one is used.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from paretone.errors import ConfigError
from paretone.hw_models._probe import SpeedProbe
from paretone.hw_models._profile import DeviceProfile
from paretone.hw_models._regress import fit_by_group
from paretone.models import Kernel

MIN_MODELS_FOR_CORRECTION = 4
Z_95 = 1.96


@dataclass(frozen=True)
class LatencyPrediction:
    """``latency_ms`` covers the predictable kernels only: a lower bound when ``coverage`` < 1."""

    latency_ms: float
    coverage: float  # share of the model's kernels the profile can predict
    uncovered: tuple[str, ...]  # kernel keys it cannot
    kernels_ms: float  # sum over kernels before the per-model correction
    interval_ms: tuple[float, float] | None = None  # 95%; None when the profile has too few models
    speed_corrected: bool = False  # scaled by a speed probe taken now

    @property
    def complete(self) -> bool:
        return not self.uncovered

    def straddles(self, limit_ms: float) -> bool:
        """The interval holds ``limit_ms``: on which side the model falls, only measuring tells."""
        return self.interval_ms is not None and self.interval_ms[0] <= limit_ms < self.interval_ms[1]

    def require_complete(self, device: str) -> LatencyPrediction:
        if self.uncovered:
            shown = ", ".join(self.uncovered[:3]) + (" ..." if len(self.uncovered) > 3 else "")
            raise ConfigError(
                f"device profile {device!r} covers {self.coverage:.0%} of this model's kernels "
                f"(missing: {shown}); run `paretone calibrate --device {device} --teacher DIR` "
                "for this teacher"
            )
        return self


class LatencyModel:
    """Fitted at construction from a profile; cheap to refit after ``profile.add_models``."""

    def __init__(self, profile: DeviceProfile) -> None:
        if not profile.kernels:
            raise ConfigError(
                f"device profile {profile.device!r} holds no kernel measurements; run `paretone calibrate`"
            )
        self.device = profile.device
        baseline_ms = float(profile.baseline.get("latency_ms", 0.0))
        self._cache: dict[Kernel, float | None] = {}
        self._regressors = fit_by_group(
            ((m.kernel, max(m.latency_ms - baseline_ms, 0.0)) for m in profile.kernels.values()), "latency"
        )
        self.slope, self.intercept_ms = 1.0, baseline_ms
        self.relative_error: float | None = None  # RMS relative residual of the whole-model fit
        fitted = [(self.predict(m.kernels, corrected=False), m.latency_ms) for m in profile.models.values()]
        usable = [(p.kernels_ms, measured) for p, measured in fitted if p.complete]
        if len(usable) >= MIN_MODELS_FOR_CORRECTION:
            x, y = np.array(usable).T
            # Relative error is what users read, so weight each model by 1 / measured.
            self.slope, self.intercept_ms = (float(v) for v in np.polyfit(x, y, 1, w=1 / y))
            residuals = (self.slope * x + self.intercept_ms) / y - 1
            # two fitted parameters: the residuals understate the error on new models by n / (n - 2)
            self.relative_error = float(np.sqrt(np.sum(residuals**2) / (len(usable) - 2)))

    def kernel_ms(self, kernel: Kernel) -> float | None:
        """The kernel's own time, or None if the profile cannot predict it."""
        return self._kernels_ms([kernel])[kernel]

    def _kernels_ms(self, kernels: Sequence[Kernel]) -> dict[Kernel, float | None]:
        """Batched by (kind, format) and memoised: a search predicts the same shapes again and again."""
        missing: dict[tuple[str, str], list[Kernel]] = {}
        for kernel in dict.fromkeys(kernels):
            if kernel not in self._cache:
                missing.setdefault((kernel.kind, kernel.format), []).append(kernel)
        for group, members in missing.items():
            regressor = self._regressors.get(group)
            values = regressor.predict_many(members) if regressor else [None] * len(members)
            self._cache.update(zip(members, values, strict=True))
        return {k: self._cache[k] for k in kernels}

    def predict(
        self, kernels: Sequence[Kernel], *, corrected: bool = True, speed: SpeedProbe | None = None
    ) -> LatencyPrediction:
        total, uncovered = 0.0, []
        times = self._kernels_ms(kernels)
        for kernel in kernels:
            ms = times[kernel]
            if ms is None:
                uncovered.append(kernel.key)
            else:
                total += ms * (speed.factor(kernel) if speed else 1.0)
        overhead = self.intercept_ms * (speed.overall if speed else 1.0)
        latency = self.slope * total + overhead if corrected else total
        latency = max(latency, 0.0) if math.isfinite(latency) else 0.0
        coverage = 1 - len(uncovered) / len(kernels) if kernels else 0.0
        interval = None
        if corrected and self.relative_error is not None:
            spread = statistics.median(speed.spread.values()) if speed and speed.spread else 0.0
            half = Z_95 * math.hypot(self.relative_error, spread)
            interval = (latency * max(1 - half, 0.0), latency * (1 + half))
        return LatencyPrediction(
            latency_ms=latency,
            coverage=coverage,
            uncovered=tuple(dict.fromkeys(uncovered)),
            kernels_ms=total,
            interval_ms=interval,
            speed_corrected=speed is not None,
        )
