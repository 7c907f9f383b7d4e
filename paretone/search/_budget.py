"""Latency, memory and size budgets, and the constraint values Optuna sees (<= 0: within budget)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from paretone.errors import ConfigError

DEFAULT_LATENCY_FRACTION = 0.75
_FLAGS = {
    "latency_ms": "--latency-budget-ms",
    "latency_fraction": "--latency-budget-fraction",
    "memory_mb": "--memory-budget-mb",
    "size_mb": "--size-budget-mb",
}


@dataclass(frozen=True)
class Budget:
    """``latency_ms`` or ``latency_fraction`` (of the teacher's predicted latency), ``memory_mb`` and
    ``size_mb``.

    Memory is peak working memory (the resident-memory rise of running the model), size the bytes of
    the exported ONNX file (what an app ships); both in MB (1e6 bytes), both predicted.
    """

    latency_ms: float | None = None
    latency_fraction: float | None = None
    memory_mb: float | None = None
    size_mb: float | None = None

    def __post_init__(self) -> None:
        for name, flag in _FLAGS.items():
            value = getattr(self, name)
            if value is not None and not (
                isinstance(value, int | float) and math.isfinite(value) and value > 0
            ):
                raise ConfigError(f"{flag} must be a positive number, got {value!r}")
        if self.latency_ms is not None and self.latency_fraction is not None:
            raise ConfigError("give --latency-budget-ms or --latency-budget-fraction, not both")
        if self.latency_fraction is not None and self.latency_fraction > 1:
            raise ConfigError(
                f"--latency-budget-fraction {self.latency_fraction} exceeds the teacher's own latency; "
                "use a fraction <= 1"
            )

    def latency_ms_for(self, teacher_latency_ms: float) -> float:
        if self.latency_ms is not None:
            return self.latency_ms
        return (self.latency_fraction or DEFAULT_LATENCY_FRACTION) * teacher_latency_ms

    def constraints(
        self, latency_ms: float, budget_ms: float, memory_bytes: float, model_bytes: float
    ) -> dict[str, float]:
        """Optuna constraint values by name: how far over budget (ms, MB); <= 0 means within."""
        values = {"latency_ms": latency_ms - budget_ms}
        if self.memory_mb is not None:
            values["memory_mb"] = memory_bytes / 1e6 - self.memory_mb
        if self.size_mb is not None:
            values["size_mb"] = model_bytes / 1e6 - self.size_mb
        return values

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
