"""Memory prediction: bytes of the exported file, and peak working memory while it runs.

``model_bytes``: per-kernel stored bytes (fitted on the micro-model files, exactly linear in the
layer widths for every format), corrected by per-format terms for graph structure (node and tensor
names) fitted on whole models.
``peak_bytes``: the resident-memory rise from loading and running the model, beyond an empty
session (what the device's OS sees, and what the memory budget bounds); ``tensor_peak_bytes``: ONNX
Runtime's own allocator peak for the model's tensors, fitted the same way on the same features: it
does not move between processes, so it shows how much of ``peak_bytes``'s error is the
measurement's. ONNX Runtime keeps prepacked copies of float weights, and packs each quantized format
its own way, so float weight bytes and each quantized format's get separate coefficients, learnt
with the largest live activations and the weights computed at load (the "dft" front-end's kernel,
folded from several intermediates) from whole-model measurements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LinearRegression

from paretone.errors import ConfigError
from paretone.hw_models._profile import DeviceProfile, ModelMeasurement
from paretone.hw_models._regress import fit_by_group
from paretone.models import Kernel

MIN_MODELS = 4


def _group(kernel: Kernel) -> str:
    return f"{kernel.layer_kind or kernel.kind}/{kernel.format}"


@dataclass(frozen=True)
class MemoryPrediction:
    model_bytes: int
    peak_bytes: int | None  # beyond an empty session; None if the profile has no whole-model memory
    coverage: float
    uncovered: tuple[str, ...]
    tensor_peak_bytes: int | None = None  # ONNX Runtime's allocator peak, beyond an empty session

    @property
    def complete(self) -> bool:
        return not self.uncovered


class MemoryModel:
    def __init__(self, profile: DeviceProfile) -> None:
        if not profile.kernels:
            raise ConfigError(
                f"device profile {profile.device!r} holds no kernel measurements; run `paretone calibrate`"
            )
        self.device = profile.device
        empty_file = float(profile.baseline.get("file_bytes", 0))
        self._bytes = fit_by_group(
            ((m.kernel, m.file_bytes - empty_file) for m in profile.kernels.values()), "bytes"
        )
        # ONNX Runtime prepacks each quantized format differently (int8 GEMM, MatMulNBits per bit
        # width): its weight bytes get a coefficient per format
        kernels = [m.kernel for m in profile.kernels.values()]
        self._quantized_formats = sorted({k.format for k in kernels if k.quantized})
        self._file: LinearRegression | None = None
        self._peak: LinearRegression | None = None
        self._tensor_peak: LinearRegression | None = None
        models = [(self._features(m.kernels), m) for m in profile.models.values()]
        models = [(f, m) for f, m in models if f is not None]
        # Quantized layers add named scale / zero-point tensors and Q/DQ nodes whose names are
        # longer in a real export than in a micro-model: one byte term per format.
        self._formats = sorted({_group(k) for _, m in models for k in m.kernels if k.quantized})
        self._file_offset = 0.0  # graph bytes beyond the kernels' own, when too few models for _file
        if len(models) >= len(self._formats) + 4:
            x = np.array([self._file_features(f, m.kernels) for f, m in models])
            self._file = LinearRegression().fit(x, np.array([m.file_bytes for _, m in models], dtype=float))
        elif models:
            self._file_offset = float(np.mean([m.file_bytes - f[0] for f, m in models]))
        self._peak = self._fit_peak(models, "peak_bytes", float(profile.baseline.get("peak_bytes", 0)))
        self._tensor_peak = self._fit_peak(
            models, "tensor_peak_bytes", float(profile.baseline.get("tensor_peak_bytes", 0))
        )

    @staticmethod
    def _fit_peak(
        models: list[tuple[tuple[float, ...], ModelMeasurement]], key: str, empty: float
    ) -> LinearRegression | None:
        """``key`` beyond an empty session from the peak features (None with too few measured)."""
        measured = [(f, getattr(m, key)) for f, m in models if getattr(m, key) is not None]
        if len(measured) < MIN_MODELS:
            return None
        x = np.array([f[1:] for f, _ in measured])
        y = np.array([peak - empty for _, peak in measured], dtype=float)
        return LinearRegression(positive=True).fit(x, y)

    def _file_features(self, features: tuple[float, ...], kernels: Sequence[Kernel]) -> list[float]:
        return [features[0], *(sum(k.quantized and _group(k) == g for k in kernels) for g in self._formats)]

    def _sizes(self, kernels: Sequence[Kernel]) -> dict[Kernel, float | None]:
        """Stored bytes per distinct kernel, one regressor call per (kind, format)."""
        groups: dict[tuple[str, str], list[Kernel]] = {}
        for kernel in dict.fromkeys(kernels):
            groups.setdefault((kernel.kind, kernel.format), []).append(kernel)
        sizes: dict[Kernel, float | None] = {}
        for group, members in groups.items():
            regressor = self._bytes.get(group)
            sizes.update(
                zip(
                    members,
                    regressor.predict_many(members) if regressor else [None] * len(members),
                    strict=True,
                )
            )
        return sizes

    def _features(self, kernels: Sequence[Kernel]) -> tuple[float, ...] | None:
        """(stored bytes, float weight bytes, quantized weight bytes per format, largest activation
        bytes, weight bytes computed at load)."""
        sizes = self._sizes(kernels)
        if any(sizes[k] is None for k in kernels):
            return None
        floating = sum(sizes[k] for k in kernels if not k.quantized)  # type: ignore[misc]
        quantized = [
            sum(sizes[k] for k in kernels if k.quantized and k.format == fmt)  # type: ignore[misc]
            for fmt in self._quantized_formats
        ]
        activation = float(max(k.activation_bytes for k in kernels))
        computed = float(sum(k.computed_weight_bytes for k in kernels))
        return floating + sum(quantized), floating, *quantized, activation, computed

    def predict(self, kernels: Sequence[Kernel]) -> MemoryPrediction:
        sizes = self._sizes(kernels)
        uncovered = tuple(dict.fromkeys(k.key for k in kernels if sizes[k] is None))
        covered = [k for k in kernels if sizes[k] is not None]
        coverage = len(covered) / len(kernels) if kernels else 0.0
        features = self._features(covered) if covered else None
        if features is None:
            return MemoryPrediction(0, None, coverage, uncovered)
        stored = features[0] + self._file_offset
        if self._file is not None:
            stored = float(self._file.predict(np.array([self._file_features(features, kernels)]))[0])
        peak, tensors = (
            None if fit is None else int(fit.predict(np.array([features[1:]]))[0])
            for fit in (self._peak, self._tensor_peak)
        )
        return MemoryPrediction(round(stored), peak, coverage, uncovered, tensor_peak_bytes=tensors)
