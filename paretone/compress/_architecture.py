"""Operator ``student``: start from a small model of any family instead of the teacher's architecture.

The entry names a family and its sizes (``{"family": "lstm", "sizes": {"hidden": [64]}}``); the
student is that model, distilled from the teacher for ``epochs`` epochs before the recipe's other
operators (quantization, ...) apply to it, and then fine-tuned like any student. Its front-end is
the teacher's as the family takes it (a recurrent family makes it stream). Without this entry the
student is the teacher's own architecture, pruned.

In a search, ``[space] students = ["lstm:hidden=64", "gru:hidden=64,64;epochs=30"]`` offers these
students beside the pruned teacher: the space grows one arm per student, each with its own
parameters for the operators that apply to a fresh student (``Operator.on_students``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from paretone.compress._front_end import student_variants
from paretone.compress._operator import (
    Frozen,
    Operator,
    Param,
    UniformSetting,
    mapping,
    only,
    register_operator,
)
from paretone.errors import ConfigError
from paretone.models import Kernel, ModelStructure, family_named, family_of

TEACHER = "teacher"  # the choice that keeps the teacher's own architecture
DEFAULT_EPOCHS = 20


def _plain_sizes(family: Any, sizes: Mapping[str, Any]) -> dict[str, Any]:
    """Sizes as the family takes them (tuples for comma-separated sizes); ConfigError otherwise."""
    options = {o.name: o for o in family.size_options}
    out = {}
    for name, value in sizes.items():
        option = options.get(name)
        if option is None:
            raise ConfigError(
                f"recipe student: {name!r} is not a size of the {family.name} family "
                f"(its sizes: {', '.join(sorted(options)) or 'none'})"
            )
        if option.type is tuple:
            values = [value] if isinstance(value, int) else value
            if isinstance(values, str) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in values
            ):
                raise ConfigError(f"recipe student: {name} must be whole numbers, got {value!r}")
            out[name] = tuple(values)
        elif isinstance(value, bool) or not isinstance(value, option.type):
            raise ConfigError(f"recipe student: {name} must be {option.type.__name__}, got {value!r}")
        else:
            out[name] = value
    return out


def parse_choice(text: str) -> tuple[str, dict[str, Any]]:
    """``"lstm:hidden=64,64;epochs=30"`` -> ("lstm", {"hidden": [64, 64], "epochs": 30}); ConfigError
    saying how to write one."""
    family, _, rest = text.partition(":")
    sizes: dict[str, Any] = {}
    for part in filter(None, rest.split(";")):
        name, eq, value = part.partition("=")
        try:
            numbers = [int(v) for v in value.split(",")]
        except ValueError:
            numbers = []
        if not eq or not numbers:
            raise ConfigError(
                f"space: students entry {text!r}: write family:size=N[,N...][;epochs=E], "
                'e.g. "lstm:hidden=64"'
            )
        sizes[name.strip()] = numbers if len(numbers) > 1 or "," in value else numbers[0]
    return family.strip(), sizes


@dataclass(frozen=True)
class StudentArchitecture(Operator):
    family: str = ""  # "": the teacher's own architecture
    sizes: Mapping[str, Any] = field(default_factory=dict)
    epochs: int = DEFAULT_EPOCHS

    key = "student"
    order = -10  # before everything: the other operators act on this architecture
    settings = ("students",)
    example_settings: ClassVar[dict[str, Any]] = {"students": ["lstm:hidden=16"]}
    on_students = False

    def __post_init__(self) -> None:
        if not isinstance(self.family, str):
            raise ConfigError(f"recipe student.family must be a family name, got {self.family!r}")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise ConfigError(f"recipe student.epochs must be a whole number >= 1, got {self.epochs!r}")
        if self.family:
            _plain_sizes(family_named(self.family), self.sizes)  # raises naming what is wrong
        elif self.sizes or self.epochs != DEFAULT_EPOCHS:
            raise ConfigError("recipe student: sizes and epochs need a family")

    @classmethod
    def from_entry(cls, entry: Any) -> StudentArchitecture:
        entry = mapping(entry, "recipe student")
        only(entry, ("family", "sizes", "epochs"), "recipe student")
        return cls(entry.get("family", ""), mapping(entry.get("sizes", {}), "recipe student.sizes"),
                   entry.get("epochs", DEFAULT_EPOCHS))  # fmt: skip

    def to_entry(self) -> dict[str, Any]:
        sizes = {k: list(v) if isinstance(v, tuple | list) else v for k, v in self.sizes.items()}
        return {"family": self.family, "sizes": sizes, "epochs": self.epochs}

    def config_for(self, teacher: Any) -> Any:
        """The student's configuration for a teacher configuration (the teacher's own if none)."""
        if not self.family:
            return teacher
        family = family_named(self.family)
        return family.teacher_config(
            num_classes=teacher.num_classes, front_end=teacher.front_end, **_plain_sizes(family, self.sizes)
        )

    def check(self, structure: ModelStructure) -> None:
        return None  # it replaces the architecture: nothing of the teacher's must exist

    def describe(self, structure: ModelStructure) -> list[str]:
        if not self.family:
            return []
        sizes = ", ".join(f"{k} {v}" for k, v in self.to_entry()["sizes"].items())
        return [
            f"Student: a new {self.family} model ({sizes or 'default sizes'}) in place of the teacher's "
            f"architecture, distilled from the teacher for {self.epochs} epochs before fine-tuning."
        ]

    def summary(self, structure: ModelStructure) -> str:
        return self.label() if self.family else ""

    def label(self) -> str:
        """The choice this entry is in a search space, e.g. ``lstm:hidden=64``."""
        if not self.family:
            return TEACHER
        parts = []
        for name, value in self.to_entry()["sizes"].items():
            parts.append(f"{name}=" + (",".join(map(str, value)) if isinstance(value, list) else str(value)))
        if self.epochs != DEFAULT_EPOCHS:
            parts.append(f"epochs={self.epochs}")
        return f"{self.family}:{';'.join(parts)}"

    # -- search ------------------------------------------------------------------------------

    @classmethod
    def parameters(
        cls, structure: ModelStructure, settings: Mapping[str, Any], frozen: Frozen
    ) -> list[Param]:
        students = settings.get("students", [])
        if isinstance(students, str) or not isinstance(students, list | tuple):
            raise ConfigError(f'space: students must be a list such as ["lstm:hidden=64"], got {students!r}')
        if not students or frozen(cls.key):
            return []
        labels = [cls.from_choice(str(s)).label() for s in students]
        return [Param(cls.key, "categorical", choices=(TEACHER, *dict.fromkeys(labels)))]

    @classmethod
    def from_choice(cls, choice: str) -> StudentArchitecture:
        family, sizes = parse_choice(choice)
        epochs = sizes.pop("epochs", DEFAULT_EPOCHS)
        if not family:
            raise ConfigError(f"space: students entry {choice!r} names no family")
        return cls(family, sizes, epochs)

    @classmethod
    def from_params(cls, values: Mapping[str, Any], params: Sequence[Param]) -> StudentArchitecture | None:
        for p in params:
            value = str(values.get(p.name, TEACHER))
            if value not in p.choices:
                raise ConfigError(f"{p.name} = {value!r} is not one of {p.choices}")
            return None if value == TEACHER else cls.from_choice(value)
        return None

    @classmethod
    def uniform(cls, params: Sequence[Param], setting: UniformSetting) -> dict[str, Any]:
        return {p.name: TEACHER for p in params}

    @classmethod
    def sweep(
        cls,
        kernels: set[Kernel],
        params: Sequence[Param],
        *,
        teacher: Any = None,
        chunk_samples: int | None = None,
    ) -> set[Kernel]:
        """Every shape each offered student can take, at every front-end its arm may choose (and,
        streaming on ``chunk_samples``, one call's)."""
        if teacher is None:
            return set()
        out: set[Kernel] = set()
        for p in params:
            for choice in p.choices:
                if choice == TEACHER:
                    continue
                config = cls.from_choice(str(choice)).config_for(teacher)
                family = family_of(config)
                for variant, chunk in student_variants(config, chunk_samples=chunk_samples):
                    out |= family.calibration_kernels(variant)
                    if chunk is not None:
                        out |= family.calibration_kernels(chunk)
        return out


register_operator(StudentArchitecture)
