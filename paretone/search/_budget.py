"""The budget: as the user gave it, and resolved once against the teacher's predicted latency.

A latency budget is absolute (``latency_ms``) or a fraction of the teacher (``latency_fraction``);
memory is peak working memory (the resident-memory rise of running the model) and size the bytes
of the exported ONNX file, both in MB (1e6 bytes). The search compares *predictions* with the
resolved budget; ``pick`` checks its *measurement* against ``limit_beside(teacher measured in the
same run)``: a fraction stays a fraction of the teacher measured beside the candidate, so a shared
machine's slow and fast phases move both sides alike. Studies store both forms.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass
from typing import Any

from paretone.errors import ConfigError

DEFAULT_LATENCY_FRACTION = 0.75
FLAGS = {
    "latency_ms": "--latency-budget-ms",
    "latency_fraction": "--latency-budget-fraction",
    "memory_mb": "--memory-budget-mb",
    "size_mb": "--size-budget-mb",
}


@dataclass(frozen=True)
class Budget:
    """What the user asked for. No latency at all means ``DEFAULT_LATENCY_FRACTION`` of the teacher."""

    latency_ms: float | None = None
    latency_fraction: float | None = None
    memory_mb: float | None = None
    size_mb: float | None = None

    def __post_init__(self) -> None:
        for name, flag in FLAGS.items():
            value = getattr(self, name)
            if value is not None and not (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
                and value > 0
            ):
                raise ConfigError(f"{flag} must be a positive number, got {value!r}")
        if self.latency_ms is not None and self.latency_fraction is not None:
            raise ConfigError("give --latency-budget-ms or --latency-budget-fraction, not both")
        if self.latency_fraction is not None and self.latency_fraction > 1:
            raise ConfigError(
                f"--latency-budget-fraction {self.latency_fraction} exceeds the teacher's own latency; "
                "use a fraction <= 1"
            )

    @property
    def fraction(self) -> float | None:
        """The latency fraction in force (the default when no latency was given), or None."""
        if self.latency_ms is not None:
            return None
        return self.latency_fraction or DEFAULT_LATENCY_FRACTION

    def resolve(self, teacher_latency_ms: float) -> ResolvedBudget:
        """Against the teacher's predicted latency (ms); ConfigError if that is not a positive number."""
        if not (math.isfinite(teacher_latency_ms) and teacher_latency_ms > 0):
            raise ConfigError(
                f"the teacher is predicted at {teacher_latency_ms} ms, which no budget can be a fraction of: "
                "the device profile is broken; re-run `paretone calibrate`"
            )
        latency = self.latency_ms if self.latency_ms is not None else self.fraction * teacher_latency_ms  # type: ignore[operator]
        return ResolvedBudget(self, float(latency), float(teacher_latency_ms))

    def flags(self) -> list[str]:
        """Command-line options that give this budget again (for hints that must run as printed)."""
        return [f"{FLAGS[name]} {value:g}" for name, value in asdict(self).items() if value is not None]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Budget:
        if not isinstance(data, dict):
            raise ConfigError("malformed budget record (not an object)")
        return cls(**{k: data.get(k) for k in FLAGS})


@dataclass(frozen=True)
class ResolvedBudget:
    """``latency_ms``: the predicted latency candidates must fit, resolved from ``given`` against
    ``teacher_latency_ms`` (the teacher's predicted latency when the search started)."""

    given: Budget
    latency_ms: float
    teacher_latency_ms: float

    @property
    def memory_mb(self) -> float | None:
        return self.given.memory_mb

    @property
    def size_mb(self) -> float | None:
        return self.given.size_mb

    def constraints(self, latency_ms: float, peak_bytes: float, model_bytes: float) -> dict[str, float]:
        """Optuna constraint values by name: how far over budget (ms, MB); <= 0 means within."""
        values = {"latency_ms": latency_ms - self.latency_ms}
        if self.given.memory_mb is not None:
            values["memory_mb"] = peak_bytes / 1e6 - self.given.memory_mb
        if self.given.size_mb is not None:
            values["size_mb"] = model_bytes / 1e6 - self.given.size_mb
        return values

    def fits(self, latency_ms: float, peak_bytes: float, model_bytes: float) -> bool:
        return all(v <= 0 for v in self.constraints(latency_ms, peak_bytes, model_bytes).values())

    def limit_beside(self, teacher_measured_ms: float) -> float:
        """The measured latency a candidate must not exceed, the teacher timed in the same run."""
        fraction = self.given.fraction
        return self.latency_ms if fraction is None else fraction * teacher_measured_ms

    def beside_teacher(self, teacher_latency_ms: float) -> ResolvedBudget:
        """This budget with its fraction resolved against ``teacher_latency_ms`` instead (the teacher
        predicted at the device's speed now); an absolute budget stays as it is."""
        return ResolvedBudget(self.given, self.limit_beside(teacher_latency_ms), teacher_latency_ms)

    def scaled(self, share: float) -> ResolvedBudget:
        """This budget with its latency limit at ``share`` (0 < share <= 1) of itself, memory and file
        size unchanged; a fraction stays a fraction, so ``beside_teacher`` keeps the share."""
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share}")
        given = self.given
        if given.fraction is None:
            given = dataclasses.replace(given, latency_ms=given.latency_ms * share)  # type: ignore[operator]
        else:
            given = dataclasses.replace(given, latency_fraction=given.fraction * share)
        return ResolvedBudget(given, self.latency_ms * share, self.teacher_latency_ms)

    def describe(self) -> str:
        fraction = self.given.fraction
        share = (
            "" if fraction is None else f" ({fraction:g} x the teacher's {self.teacher_latency_ms:.3f} ms)"
        )
        extra = "".join(
            f", {what} {value:g} MB"
            for what, value in (("memory", self.given.memory_mb), ("file", self.given.size_mb))
            if value is not None
        )
        return f"{self.latency_ms:.3f} ms{share}{extra}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "given": self.given.to_dict(),
            "latency_ms": self.latency_ms,
            "teacher_latency_ms": self.teacher_latency_ms,
        }

    @classmethod
    def from_dict(cls, data: Any) -> ResolvedBudget:
        """Read ``to_dict`` output, or the flat record studies of paretone 0.1.0 stored
        (``{latency_ms (resolved), latency_fraction, memory_mb, size_mb}``)."""
        if not isinstance(data, dict):
            raise ConfigError("malformed budget record in the study (not an object)")
        try:
            if "given" in data:
                return cls(
                    Budget.from_dict(data["given"]),
                    float(data["latency_ms"]),
                    float(data["teacher_latency_ms"]),
                )
            fraction = data.get("latency_fraction")
            given = Budget(
                latency_ms=None if fraction is not None else data.get("latency_ms"),
                latency_fraction=fraction,
                memory_mb=data.get("memory_mb"),
                size_mb=data.get("size_mb"),
            )
            latency = float(data["latency_ms"])
            teacher = latency / fraction if fraction else float("nan")
            return cls(given, latency, teacher)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"malformed budget record in the study ({exc!r})") from None
