"""Regressors over the kernels of one (kind, format) pair, with an explicit domain.

A regressor answers only inside the box of shapes it was measured on: outside it returns None, and
the caller reports the kernel as not covered. Trees cannot extrapolate anyway, and a linear
extrapolation of a staircase-shaped latency curve would be a guess presented as a measurement.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.linear_model import LinearRegression

from paretone.models import Kernel


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
    """One quantity of a kernel from its shape, inside the measured domain, for one (kind, format).

    ``latency`` uses extremely randomised trees on log-widths (staircase-shaped curves, fixed
    seed); ``bytes`` uses least squares in a basis where stored bytes are exactly linear. Fewer
    than three measurements: their mean (fixed-shape kernels such as the front-end).
    """

    def __init__(self, domain: _Domain, model: Any, constant: float, features: Features) -> None:
        self.domain, self._model, self._constant, self._features = domain, model, constant, features

    @classmethod
    def fit(cls, points: Sequence[tuple[Kernel, float]], quantity: str) -> KernelRegressor:
        features, make = _QUANTITIES[quantity]
        kernels = [k for k, _ in points]
        y = np.array([v for _, v in points], dtype=float)
        model = None
        if len(points) >= 3:
            model = make().fit(np.array([features(k) for k in kernels]), y)
        return cls(_Domain.of(kernels), model, float(y.mean()), features)

    def predict(self, kernel: Kernel) -> float | None:
        return self.predict_many([kernel])[0]

    def predict_many(self, kernels: Sequence[Kernel]) -> list[float | None]:
        """One model call for many kernels (a tree ensemble costs milliseconds per call)."""
        inside = [k for k in kernels if self.domain.contains(k)]
        if self._model is None or not inside:
            values = dict.fromkeys(inside, self._constant)
        else:
            predicted = _predict(self._model, np.array([self._features(k) for k in inside]))
            values = {k: float(v) for k, v in zip(inside, predicted, strict=True)}
        return [values.get(k) for k in kernels]


def _predict(model: Any, x: np.ndarray) -> np.ndarray:
    """``model.predict(x)``; a tree ensemble averages its trees directly, skipping the per-call input
    checks and joblib dispatch that cost milliseconds a call (a search predicts thousands of times).
    The same numbers: a regression forest's prediction is the mean of its trees'."""
    if isinstance(model, ExtraTreesRegressor):
        rows = np.ascontiguousarray(x, dtype=np.float32)  # the dtype the trees were fitted in
        return np.mean([tree.predict(rows, check_input=False) for tree in model.estimators_], axis=0)
    return model.predict(x)


Features = Callable[[Kernel], list[float]]
_QUANTITIES: dict[str, tuple[Features, Callable[[], Any]]] = {
    "latency": (_latency_features, lambda: ExtraTreesRegressor(n_estimators=100, random_state=0, n_jobs=1)),
    "bytes": (_bytes_features, LinearRegression),
}


def fit_by_group(
    measurements: Iterable[tuple[Kernel, float]], quantity: str
) -> dict[tuple[str, str], KernelRegressor]:
    """One regressor per (kind, format) pair of the measured kernels."""
    groups: dict[tuple[str, str], list[tuple[Kernel, float]]] = defaultdict(list)
    for kernel, value in measurements:
        groups[(kernel.kind, kernel.format)].append((kernel, value))
    return {group: KernelRegressor.fit(points, quantity) for group, points in groups.items()}
