"""Operator ``front_end``: how the student computes its log-mel features.

``implementation: "dft"`` computes the teacher's very features with faster kernels (a strided Conv1d
with a cos/sin kernel, equal to the STFT within float rounding); a larger ``hop_length`` gives
fewer frames, fewer ``n_mels`` fewer bands, hence fewer tokens or a smaller map; both need
fine-tuning to recover (the family carries the weights that read the bands over, ``slice``). Absent
fields keep the teacher's choice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
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
from paretone.models import ModelStructure, family_of

HOP_FACTORS = (1, 2, 3)  # a student may hop 1x, 2x or 3x as far as the teacher (at most n_fft)
MEL_FRACTIONS = (1.0, 0.75, 0.5)  # and keep all, 3/4 or half of the teacher's mel bands
MEL_STEP = 8  # band counts are multiples of this (whole SIMD lanes), at least one step
FRONT_END = "front_end"  # the name a space config freezes the front-end by
# search parameter -> FrontEndChoice field (the parameter "front_end" names the implementation)
_FIELDS = {"front_end": "implementation", "hop_length": "hop_length", "n_mels": "n_mels"}


@dataclass(frozen=True)
class FrontEndChoice:
    """One front-end a student may use; None keeps the teacher's value of that field."""

    implementation: str | None = None
    hop_length: int | None = None
    n_mels: int | None = None

    def apply(self, config: FrontEndConfig) -> FrontEndConfig:
        changes = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        return dataclasses.replace(config, **changes)


@dataclass(frozen=True)
class FrontEndOptions:
    """What a student of a teacher may change in its front-end, each tuple the teacher's first."""

    implementations: tuple[str | None, ...]
    hop_lengths: tuple[int | None, ...]
    n_mels: tuple[int | None, ...]

    def choices(self) -> list[FrontEndChoice]:
        """Every combination, finest first: fewest features per second lost against the teacher
        (bands over hop), ties with more bands, then the teacher's implementation first (a stable
        order the uniform rule and reports rely on). A None entry is the teacher's value."""
        hop0, mels0 = self.hop_lengths[0] or 1, self.n_mels[0] or 1

        def coarseness(c: FrontEndChoice) -> float:
            return ((c.hop_length or hop0) / hop0) * (mels0 / (c.n_mels or mels0))

        combos = [
            FrontEndChoice(i, h, m)
            for m in self.n_mels
            for h in self.hop_lengths
            for i in self.implementations
        ]
        return sorted(combos, key=coarseness)


def front_end_options(config: FrontEndConfig) -> FrontEndOptions:
    """The front-ends a student of a teacher with ``config`` may use."""
    implementations = (config.implementation, *(i for i in IMPLEMENTATIONS if i != config.implementation))
    hops = tuple(config.hop_length * f for f in HOP_FACTORS if config.hop_length * f <= config.n_fft)
    mels = [config.n_mels]
    for fraction in MEL_FRACTIONS[1:]:
        bands = max(MEL_STEP, round(config.n_mels * fraction / MEL_STEP) * MEL_STEP)
        if bands < config.n_mels and bands not in mels:
            mels.append(bands)
    return FrontEndOptions(implementations, hops, tuple(mels))


def student_variants(teacher: Any, *, chunk_samples: int | None = None) -> Iterator[tuple[Any, Any]]:
    """Per front-end a student of ``teacher`` (a model configuration) may use: the teacher's
    architecture with it, built by its family (fewer mel bands also shrink what reads them, an AST's
    patch), and, streaming on ``chunk_samples`` that whole hops fill, the same at one call's chunk
    (else None): the shapes a calibration sweep covers."""
    family = family_of(teacher)
    for choice in front_end_options(teacher.front_end).choices():
        fe = choice.apply(teacher.front_end)
        chunk = None
        if chunk_samples and family.can_stream and chunk_samples % fe.hop_length == 0:
            chunked = dataclasses.replace(fe, clip_samples=chunk_samples)
            chunk = family.student_config(teacher, kept={}, front_end=chunked)
        yield family.student_config(teacher, kept={}, front_end=fe), chunk


@dataclass(frozen=True)
class FrontEnd(Operator):
    implementation: str | None = None
    hop_length: int | None = None
    n_mels: int | None = None

    key = "front_end"
    order = 0

    def __post_init__(self) -> None:
        if self.implementation is not None and self.implementation not in IMPLEMENTATIONS:
            raise ConfigError(
                f"recipe front_end.implementation {self.implementation!r}: use {IMPLEMENTATIONS}"
            )
        for name, unit in (("hop_length", "samples"), ("n_mels", "mel bands")):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"recipe front_end.{name} {value!r}: a positive whole number of {unit}")

    @property
    def choice(self) -> FrontEndChoice:
        return FrontEndChoice(self.implementation, self.hop_length, self.n_mels)

    @classmethod
    def from_entry(cls, entry: Any) -> FrontEnd:
        entry = mapping(entry, "recipe front_end")
        only(entry, ("implementation", "hop_length", "n_mels"), "recipe front_end")
        return cls(entry.get("implementation"), entry.get("hop_length"), entry.get("n_mels"))

    def to_entry(self) -> dict[str, Any]:
        entry = {"implementation": self.implementation, "hop_length": self.hop_length}
        # written only when set, so a recipe from before mel bands were searched reads back unchanged
        return entry if self.n_mels is None else {**entry, "n_mels": self.n_mels}

    def apply(self, config: FrontEndConfig) -> FrontEndConfig:
        """The student's front-end; ConfigError if the teacher's cannot be changed this way."""
        return self.choice.apply(config)

    def check(self, structure: ModelStructure) -> None:
        self.apply(structure.front_end)  # raises if the teacher's cannot change this way

    def plan(self, structure: ModelStructure, plan: StudentPlan) -> StudentPlan:
        return replace(plan, front_end=self.apply(plan.front_end))

    def describe(self, structure: ModelStructure) -> list[str]:
        teacher, student = structure.front_end, self.apply(structure.front_end)
        if student == teacher:
            return []
        return [
            f"Front-end: {student.implementation} implementation, hop {student.hop_length} samples, "
            f"{student.n_mels} mel bands (teacher: {teacher.implementation}, hop {teacher.hop_length}, "
            f"{teacher.n_mels} bands)."
        ]

    def summary(self, structure: ModelStructure) -> str:
        teacher, fe = structure.front_end, self.apply(structure.front_end)
        if fe == teacher:
            return ""
        mels = "" if fe.n_mels == teacher.n_mels else f"/mel{fe.n_mels}"
        return f"{fe.implementation}/hop{fe.hop_length}{mels}"

    @classmethod
    def parameters(
        cls, structure: ModelStructure, settings: Mapping[str, Any], frozen: Frozen
    ) -> list[Param]:
        if frozen(FRONT_END):
            return []
        options = front_end_options(structure.front_end)
        searched = (
            ("front_end", options.implementations),
            ("hop_length", options.hop_lengths),
            ("n_mels", options.n_mels),
        )
        return [Param(name, "categorical", choices=choices) for name, choices in searched if len(choices) > 1]

    @classmethod
    def from_params(cls, values: Mapping[str, Any], params: Sequence[Param]) -> FrontEnd | None:
        chosen: dict[str, Any] = {}
        for p in params:
            value = values.get(p.name, p.choices[0])
            if value not in p.choices:
                raise ConfigError(f"{p.name} = {value!r} is not one of {p.choices}")
            if value != p.choices[0]:
                chosen[_FIELDS[p.name]] = str(value) if p.name == "front_end" else int(value)
        return cls(**chosen) if chosen else None

    @classmethod
    def options(cls, params: Sequence[Param]) -> list[FrontEndChoice | None]:
        """Every front-end choice the parameters offer, finest first (coarser ones cost accuracy);
        [None] when the front-end is not searched."""
        by_name = {p.name: p.choices for p in params}
        if not by_name:
            return [None]
        return FrontEndOptions(
            by_name.get("front_end", (None,)),  # type: ignore[arg-type]
            by_name.get("hop_length", (None,)),  # type: ignore[arg-type]
            by_name.get("n_mels", (None,)),  # type: ignore[arg-type]
        ).choices()

    @classmethod
    def uniform(cls, params: Sequence[Param], setting: UniformSetting) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for p in params:
            value = None if setting.front_end is None else getattr(setting.front_end, _FIELDS[p.name])
            out[p.name] = p.choices[0] if value is None else value
        return out


register_operator(FrontEnd)
