"""The recipe: the one description of a compressed model, as versioned JSON.

A recipe says, per prunable unit of the teacher, how much to keep, and per quantizable layer, at
which bit-widths it runs; plus how the student is distilled. Units a recipe does not mention are
kept whole, layers it does not mention stay float. ``Recipe.check(structure)`` refuses anything the
teacher does not have or the runtime cannot run.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from paretone import __version__
from paretone.audio import IMPLEMENTATIONS, FrontEndConfig
from paretone.compress._formats import format_for
from paretone.errors import ConfigError
from paretone.models import ATTENTION_HEADS, ModelStructure

RECIPE_FORMAT = "paretone.recipe/1"
HOP_FACTORS = (1, 2, 3)  # a student may hop 1x, 2x or 3x as far as the teacher (at most n_fft)
IMPORTANCE_CRITERIA = ("magnitude", "taylor")


@dataclass(frozen=True)
class LayerPrecision:
    """Bit-widths of one layer; ``None`` means float."""

    weight_bits: int | None = None
    activation_bits: int | None = None

    @property
    def is_float(self) -> bool:
        return self.weight_bits is None and self.activation_bits is None


@dataclass(frozen=True)
class Distillation:
    """Loss = alpha * T^2 * KL(student/T || teacher/T) + (1 - alpha) * cross-entropy."""

    temperature: float = 4.0
    alpha: float = 0.5

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ConfigError(f"distillation temperature must be positive, got {self.temperature}")
        if not 0 <= self.alpha <= 1:
            raise ConfigError(f"distillation alpha must be in [0, 1], got {self.alpha}")


@dataclass(frozen=True)
class FrontEndChoice:
    """How the student computes its log-mel features; ``None`` keeps the teacher's choice.

    ``implementation="dft"`` computes the teacher's very features with faster kernels; a larger
    ``hop_length`` gives fewer frames, hence fewer tokens, and needs fine-tuning to recover.
    """

    implementation: str | None = None
    hop_length: int | None = None

    def __post_init__(self) -> None:
        if self.implementation is not None and self.implementation not in IMPLEMENTATIONS:
            raise ConfigError(
                f"recipe front_end.implementation {self.implementation!r}: use {IMPLEMENTATIONS}"
            )
        hop = self.hop_length
        if hop is not None and (isinstance(hop, bool) or not isinstance(hop, int) or hop < 1):
            raise ConfigError(f"recipe front_end.hop_length {hop!r}: a positive whole number of samples")

    def apply(self, config: FrontEndConfig) -> FrontEndConfig:
        """The student's front-end; ConfigError if the teacher's cannot be changed this way."""
        changes: dict[str, Any] = {}
        if self.implementation is not None:
            changes["implementation"] = self.implementation
        if self.hop_length is not None:
            changes["hop_length"] = self.hop_length
        return dataclasses.replace(config, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {"implementation": self.implementation, "hop_length": self.hop_length}


def front_end_options(config: FrontEndConfig) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """(implementations, hop lengths) a student of a teacher with ``config`` may use; teacher's first."""
    implementations = (config.implementation, *(i for i in IMPLEMENTATIONS if i != config.implementation))
    hops = tuple(config.hop_length * f for f in HOP_FACTORS if config.hop_length * f <= config.n_fft)
    return implementations, hops


@dataclass(frozen=True)
class Recipe:
    heads: Mapping[str, int] = field(default_factory=dict)
    channels: Mapping[str, float] = field(default_factory=dict)
    precision: Mapping[str, LayerPrecision] = field(default_factory=dict)
    distillation: Distillation = field(default_factory=Distillation)
    importance: str = "magnitude"
    front_end: FrontEndChoice = field(default_factory=FrontEndChoice)

    def __post_init__(self) -> None:
        if self.importance not in IMPORTANCE_CRITERIA:
            raise ConfigError(
                f"importance {self.importance!r} unknown: use one of {', '.join(IMPORTANCE_CRITERIA)}"
            )
        for name, ratio in self.channels.items():
            if not (isinstance(ratio, int | float) and 0 < ratio <= 1):
                raise ConfigError(f"recipe channels[{name!r}] = {ratio!r}: a kept fraction must be in (0, 1]")
        for name, count in self.heads.items():
            if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                raise ConfigError(f"recipe heads[{name!r}] = {count!r}: keep at least one whole head")

    def check(self, structure: ModelStructure) -> None:
        """Raise ConfigError unless every name exists in ``structure`` with a supported format."""
        units = {u.name: u for u in structure.prunable}
        layers = {q.name: q for q in structure.quantizable}
        self.front_end.apply(structure.front_end)  # raises if the teacher's cannot change this way
        for name, count in self.heads.items():
            unit = units.get(name)
            if unit is None or unit.kind != ATTENTION_HEADS:
                raise ConfigError(f"recipe heads: {name!r} is not an attention-heads unit of this model")
            if count > unit.size:
                raise ConfigError(f"recipe heads[{name!r}] = {count} but the teacher has {unit.size}")
        for name in self.channels:
            unit = units.get(name)
            if unit is None or unit.kind == ATTENTION_HEADS:
                known = ", ".join(u.name for u in structure.prunable if u.kind != ATTENTION_HEADS)
                raise ConfigError(f"recipe channels: unknown unit {name!r}; this model has {known}")
        for name, precision in self.precision.items():
            layer = layers.get(name)
            if layer is None:
                raise ConfigError(f"recipe precision: {name!r} is not a quantizable layer of this model")
            format_for(layer.kind, precision.weight_bits, precision.activation_bits)  # raises

    def kept(self, unit_name: str, size: int) -> int:
        """How many of a unit's ``size`` structures survive (at least one)."""
        if unit_name in self.heads:
            return self.heads[unit_name]
        return max(1, round(size * self.channels.get(unit_name, 1.0)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": RECIPE_FORMAT,
            "paretone_version": __version__,
            "heads": dict(self.heads),
            "channels": dict(self.channels),
            "precision": {
                k: {"weight_bits": v.weight_bits, "activation_bits": v.activation_bits}
                for k, v in self.precision.items()
            },
            "distillation": {"temperature": self.distillation.temperature, "alpha": self.distillation.alpha},
            "importance": self.importance,
            "front_end": self.front_end.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Recipe:
        """Parse ``to_dict`` output; anything else raises ConfigError saying what is wrong."""
        if not isinstance(data, dict) or data.get("format") != RECIPE_FORMAT:
            raise ConfigError(f"not a {RECIPE_FORMAT} recipe; write one with paretone (Recipe.to_dict)")
        unknown = set(data) - {
            "format",
            "paretone_version",
            "heads",
            "channels",
            "precision",
            "distillation",
            "importance",
            "front_end",
        }
        if unknown:
            raise ConfigError(f"recipe has unknown field(s) {', '.join(sorted(unknown))}")
        try:
            precision = {
                str(k): LayerPrecision(_bits(v["weight_bits"]), _bits(v["activation_bits"]))
                for k, v in _mapping(data, "precision").items()
            }
            return cls(
                heads=_mapping(data, "heads"),
                channels=_mapping(data, "channels"),
                precision=precision,
                distillation=Distillation(**_mapping(data, "distillation")),
                importance=data.get("importance", "magnitude"),
                front_end=FrontEndChoice(**_mapping(data, "front_end")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"malformed recipe ({exc!r}); compare it with Recipe.to_dict output") from None


def _mapping(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be an object, got {type(value).__name__}")
    return {str(k): v for k, v in value.items()}


def _bits(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"bit-width {value!r} is not a whole number or null")
    return value
