"""Operator ``front_end``: how the student computes its log-mel features.

``implementation: "dft"`` computes the teacher's very features with faster kernels (a strided Conv1d
with a cos/sin kernel, equal to the STFT within float rounding); a larger ``hop_length`` gives
fewer frames, hence fewer tokens, and needs fine-tuning to recover. Absent fields keep the
teacher's choice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from paretone.audio import IMPLEMENTATIONS, FrontEndConfig
from paretone.compress._operator import (
    Frozen,
    Operator,
    Param,
    StudentPlan,
    UniformSetting,
    mapping,
    only,
    register_operator,
)
from paretone.errors import ConfigError
from paretone.models import ModelStructure

HOP_FACTORS = (1, 2, 3)  # a student may hop 1x, 2x or 3x as far as the teacher (at most n_fft)
FRONT_END = "front_end"  # the name a space config freezes the front-end by


def front_end_options(config: FrontEndConfig) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """(implementations, hop lengths) a student of a teacher with ``config`` may use; teacher's first."""
    implementations = (config.implementation, *(i for i in IMPLEMENTATIONS if i != config.implementation))
    hops = tuple(config.hop_length * f for f in HOP_FACTORS if config.hop_length * f <= config.n_fft)
    return implementations, hops


@dataclass(frozen=True)
class FrontEnd(Operator):
    implementation: str | None = None
    hop_length: int | None = None

    key = "front_end"
    order = 0

    def __post_init__(self) -> None:
        if self.implementation is not None and self.implementation not in IMPLEMENTATIONS:
            raise ConfigError(
                f"recipe front_end.implementation {self.implementation!r}: use {IMPLEMENTATIONS}"
            )
        hop = self.hop_length
        if hop is not None and (isinstance(hop, bool) or not isinstance(hop, int) or hop < 1):
            raise ConfigError(f"recipe front_end.hop_length {hop!r}: a positive whole number of samples")

    @classmethod
    def from_entry(cls, entry: Any) -> FrontEnd:
        entry = mapping(entry, "recipe front_end")
        only(entry, ("implementation", "hop_length"), "recipe front_end")
        return cls(entry.get("implementation"), entry.get("hop_length"))

    def to_entry(self) -> dict[str, Any]:
        return {"implementation": self.implementation, "hop_length": self.hop_length}

    def apply(self, config: FrontEndConfig) -> FrontEndConfig:
        """The student's front-end; ConfigError if the teacher's cannot be changed this way."""
        changes: dict[str, Any] = {}
        if self.implementation is not None:
            changes["implementation"] = self.implementation
        if self.hop_length is not None:
            changes["hop_length"] = self.hop_length
        return dataclasses.replace(config, **changes)

    def check(self, structure: ModelStructure) -> None:
        self.apply(structure.front_end)  # raises if the teacher's cannot change this way

    def plan(self, structure: ModelStructure, plan: StudentPlan) -> StudentPlan:
        return replace(plan, front_end=self.apply(plan.front_end))

    def describe(self, structure: ModelStructure) -> list[str]:
        teacher, student = structure.front_end, self.apply(structure.front_end)
        if student == teacher:
            return []
        return [
            f"Front-end: {student.implementation} implementation, hop {student.hop_length} samples "
            f"(teacher: {teacher.implementation}, hop {teacher.hop_length})."
        ]

    def summary(self, structure: ModelStructure) -> str:
        fe = self.apply(structure.front_end)
        return "" if fe == structure.front_end else f"{fe.implementation}/hop{fe.hop_length}"

    @classmethod
    def parameters(
        cls, structure: ModelStructure, settings: Mapping[str, Any], frozen: Frozen
    ) -> list[Param]:
        if frozen(FRONT_END):
            return []
        implementations, hops = front_end_options(structure.front_end)
        params = []
        if len(implementations) > 1:
            params.append(Param("front_end", "categorical", choices=implementations))
        if len(hops) > 1:
            params.append(Param("hop_length", "categorical", choices=hops))
        return params

    @classmethod
    def from_params(cls, values: Mapping[str, Any], params: Sequence[Param]) -> FrontEnd | None:
        chosen = {}
        for p in params:
            value = values.get(p.name, p.choices[0])
            if value not in p.choices:
                raise ConfigError(f"{p.name} = {value!r} is not one of {p.choices}")
            chosen[p.name] = None if value == p.choices[0] else value
        implementation, hop = chosen.get("front_end"), chosen.get("hop_length")
        if implementation is None and hop is None:
            return None
        return cls(None if implementation is None else str(implementation), None if hop is None else int(hop))

    @classmethod
    def options(cls, params: Sequence[Param]) -> list[tuple[str, int] | None]:
        """Every (implementation, hop) pair, finest hop first (coarser hops cost accuracy); [None]
        when the front-end is not searched."""
        by_name = {p.name: p.choices for p in params}
        if not by_name:
            return [None]
        implementations = by_name.get("front_end", (None,))
        hops = by_name.get("hop_length", (None,))
        return [(i, h) for h in hops for i in implementations]

    @classmethod
    def uniform(cls, params: Sequence[Param], setting: UniformSetting) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for p in params:
            index = 0 if p.name == "front_end" else 1
            out[p.name] = setting.front_end[index] if setting.front_end else p.choices[0]
        return out


register_operator(FrontEnd)
