"""Operator ``prune``: structured pruning that physically removes parameters.

The entry names, per prunable unit, how many attention heads to keep (``heads``, a count) or
which fraction of its channels (``channels``, in (0, 1]), and the ``importance`` criterion that
ranks the structures; the best-scoring ones are kept and the family slices the weights into a
smaller model of the same family, so parameters, MACs and the exported ONNX file all shrink.
Attention keeps its query/key channels paired and its value/output channels paired; a CNN filter's
BatchNorm entry and the next layer's input channel go with it.

Hand-written rather than torch-pruning: each family names its structure explicitly, the per-head
channel layout needs custom handling in any library, and the slicing is short enough to read and
verify (the conformance suite checks that pruning dead structures leaves outputs unchanged).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from paretone.audio import WaveformSet
from paretone.compress._importance import importance_named
from paretone.compress._operator import (
    Frozen,
    Operator,
    Param,
    StudentPlan,
    UniformSetting,
    mapping,
    number,
    only,
    register_operator,
)
from paretone.errors import ConfigError
from paretone.models import ATTENTION_HEADS, AudioModel, ModelStructure
from paretone.tasks import Task

UNIT_NAMES = {
    "qk_channels": "Query/key channels per head",
    "v_channels": "Value/output channels per head",
    "ffn_channels": "Feed-forward hidden units",
    "conv_filters": "Conv filters",
}


def top_indices(scores: torch.Tensor, keep: int) -> torch.Tensor:
    """Indices of the ``keep`` best scores along the last axis, in their original order."""
    return torch.topk(scores, keep, dim=-1).indices.sort(dim=-1).values


@dataclass(frozen=True)
class Prune(Operator):
    heads: Mapping[str, int] = field(default_factory=dict)  # unit -> heads kept
    channels: Mapping[str, float] = field(default_factory=dict)  # unit -> kept fraction
    importance: str = "magnitude"

    key = "prune"
    on_students = False  # a new student's size is chosen directly
    order = 10
    settings = ("min_keep", "keep_step")

    def __post_init__(self) -> None:
        importance_named(self.importance)  # raises for an unknown criterion
        for name, ratio in self.channels.items():
            if isinstance(ratio, bool) or not (isinstance(ratio, int | float) and 0 < ratio <= 1):
                raise ConfigError(f"recipe channels[{name!r}] = {ratio!r}: a kept fraction must be in (0, 1]")
        for name, count in self.heads.items():
            if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                raise ConfigError(f"recipe heads[{name!r}] = {count!r}: keep at least one whole head")

    @classmethod
    def from_entry(cls, entry: Any) -> Prune:
        entry = mapping(entry, "recipe prune")
        only(entry, ("heads", "channels", "importance"), "recipe prune")
        importance = entry.get("importance", "magnitude")
        if not isinstance(importance, str):
            raise ConfigError(f"recipe prune.importance must be a name, got {importance!r}")
        return cls(
            mapping(entry.get("heads", {}), "recipe prune.heads"),
            mapping(entry.get("channels", {}), "recipe prune.channels"),
            importance,
        )

    def to_entry(self) -> dict[str, Any]:
        return {"heads": dict(self.heads), "channels": dict(self.channels), "importance": self.importance}

    def kept(self, unit_name: str, size: int) -> int:
        """How many of a unit's ``size`` structures survive (at least one)."""
        if unit_name in self.heads:
            return self.heads[unit_name]
        return max(1, round(size * self.channels.get(unit_name, 1.0)))

    def check(self, structure: ModelStructure) -> None:
        units = {u.name: u for u in structure.prunable}
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
        importance_named(self.importance).check(structure, set(self.heads) | set(self.channels))

    def plan(self, structure: ModelStructure, plan: StudentPlan) -> StudentPlan:
        kept = {u.name: self.kept(u.name, u.size) for u in structure.prunable}
        return replace(plan, kept={**plan.kept, **kept})

    def keep_indices(
        self, teacher: AudioModel, kept: Mapping[str, int], data: WaveformSet | None, task: Task
    ) -> dict[str, torch.Tensor]:
        """Per unit, the indices of the structures the student keeps, best by the criterion."""
        scores = importance_named(self.importance).scores(teacher, data, task)
        return {unit: top_indices(score, kept[unit]) for unit, score in scores.items()}

    def describe(self, structure: ModelStructure) -> list[str]:
        lines = []
        heads = [u for u in structure.prunable if u.kind == ATTENTION_HEADS]
        if heads:
            kept = sum(self.kept(u.name, u.size) for u in heads)
            lines.append(f"Attention heads kept: {kept} of {sum(u.size for u in heads)}.")
        for kind in sorted({u.kind for u in structure.prunable} - {ATTENTION_HEADS}):
            units = [u for u in structure.prunable if u.kind == kind]
            kept = sum(self.kept(u.name, u.size) for u in units)
            total = sum(u.size for u in units)
            name = UNIT_NAMES.get(kind, kind.replace("_", " ").capitalize())
            lines.append(f"{name} kept: {kept} of {total} ({kept / total:.0%}).")
        if self.heads or self.channels:
            lines.append(f"Structures ranked by {self.importance} importance.")
        return lines

    def summary(self, structure: ModelStructure) -> str:
        parts = []
        heads = [u for u in structure.prunable if u.kind == ATTENTION_HEADS]
        if heads:
            parts.append(
                f"heads {sum(self.kept(u.name, u.size) for u in heads)}/{sum(u.size for u in heads)}"
            )
        others = [u for u in structure.prunable if u.kind != ATTENTION_HEADS]
        if others:
            kept = sum(self.kept(u.name, u.size) for u in others) / sum(u.size for u in others)
            parts.append(f"ch {kept:.0%}")
        return " ".join(parts)

    @classmethod
    def parameters(
        cls, structure: ModelStructure, settings: Mapping[str, Any], frozen: Frozen
    ) -> list[Param]:
        min_keep = number(settings.get("min_keep", 0.25), "space: min_keep")
        step = number(settings.get("keep_step", 0.125), "space: keep_step")
        if not (0 < min_keep <= 1 and 0 < step <= 1):
            raise ConfigError("space: min_keep and keep_step must be in (0, 1]")
        params = []
        for unit in structure.prunable:
            if frozen(unit.name):
                continue
            if unit.kind == ATTENTION_HEADS:
                if unit.size > 1:
                    params.append(Param(f"heads:{unit.name}", "int", 1, unit.size))
                continue
            low = min(1.0, math.ceil(max(min_keep, 1 / unit.size) / step - 1e-9) * step)
            if low < 1.0:
                params.append(Param(f"keep:{unit.name}", "float", round(low, 6), 1.0, step))
        return params

    @classmethod
    def from_params(cls, values: Mapping[str, Any], params: Sequence[Param]) -> Prune | None:
        heads, channels = {}, {}
        for p in params:
            unit = p.name.split(":", 1)[1]
            if p.name.startswith("heads:") and int(values[p.name]) < p.high:
                heads[unit] = int(values[p.name])
            elif p.name.startswith("keep:") and float(values[p.name]) < 1.0:
                channels[unit] = float(values[p.name])
        return cls(heads, channels) if heads or channels else None

    @classmethod
    def uniform(cls, params: Sequence[Param], setting: UniformSetting) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for p in params:
            if p.name.startswith("heads:"):
                out[p.name] = max(1, round(p.high * setting.keep))
            else:
                out[p.name] = min(p.high, max(p.low, round(setting.keep / p.step) * p.step))
        return out


register_operator(Prune)
