"""Regressors over the kernels of one (kind, format) pair, with an explicit domain.

A regressor answers only inside the box of shapes it was measured on: outside it returns None, and
the caller reports the kernel as not covered. Trees cannot extrapolate anyway, and a linear
extrapolation of a staircase-shaped latency curve would be a guess presented as a measurement.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.linear_model import LinearRegression

from paretone.hw_models._kernels import Kernel


def _latency_features(kernel: Kernel) -> list[float]:
    # log scale: widths span 1..384 and the time of a GEMM follows their product
    return [math.log1p(v) for _, v in kernel.shape] + [math.log1p(kernel.macs)]


def _bytes_features(kernel: Kernel) -> list[float]:
    """A basis in which stored bytes are linear for every format: weights (in x out), per-channel
    scales (out), 32-weight blocks of MatMulNBits (out x ceil(in / 32)), and the raw widths."""
    d = kernel.dims
    widths = [float(v) for _, v in kernel.shape]
    if "in" in d and "out" in d:
        return [*widths, d["in"] * d["out"], d["out"] * math.ceil(d["in"] / 32)]
    return [*widths, float(kernel.macs)]


@dataclass
class _Domain:
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def of(cls, kernels: Sequence[Kernel]) -> _Domain:
        values = np.array([[v for _, v in k.shape] for k in kernels], dtype=float)
        return cls(values.min(axis=0), values.max(axis=0))

    def contains(self, kernel: Kernel) -> bool:
        values = np.array([v for _, v in kernel.shape], dtype=float)
        return bool(np.all(values >= self.low) and np.all(values <= self.high))


class KernelRegressor:
    """Milliseconds of a kernel from its shape (extremely randomised trees, fixed seed)."""

    def __init__(self, domain: _Domain, model: ExtraTreesRegressor | None, constant: float) -> None:
        self.domain, self._model, self._constant = domain, model, constant

    @classmethod
    def fit(cls, points: Sequence[tuple[Kernel, float]]) -> KernelRegressor:
        kernels = [k for k, _ in points]
        y = np.array([ms for _, ms in points])
        if len(points) < 3:
            return cls(_Domain.of(kernels), None, float(y.mean()))
        x = np.array([_latency_features(k) for k in kernels])
        model = ExtraTreesRegressor(n_estimators=100, random_state=0, n_jobs=1).fit(x, y)
        return cls(_Domain.of(kernels), model, float(y.mean()))

    def predict(self, kernel: Kernel) -> float | None:
        if not self.domain.contains(kernel):
            return None
        if self._model is None:
            return self._constant
        return float(self._model.predict(np.array([_latency_features(kernel)]))[0])


class BytesRegressor:
    """Stored bytes of a kernel (least squares in a basis where they are exactly linear)."""

    def __init__(self, domain: _Domain, model: LinearRegression | None, constant: float) -> None:
        self.domain, self._model, self._constant = domain, model, constant

    @classmethod
    def fit(cls, points: Sequence[tuple[Kernel, float]]) -> BytesRegressor:
        kernels = [k for k, _ in points]
        y = np.array([b for _, b in points], dtype=float)
        if len(points) < 3:
            return cls(_Domain.of(kernels), None, float(y.mean()))
        model = LinearRegression().fit(np.array([_bytes_features(k) for k in kernels]), y)
        return cls(_Domain.of(kernels), model, float(y.mean()))

    def predict(self, kernel: Kernel) -> float | None:
        if not self.domain.contains(kernel):
            return None
        if self._model is None:
            return self._constant
        return float(self._model.predict(np.array([_bytes_features(kernel)]))[0])
