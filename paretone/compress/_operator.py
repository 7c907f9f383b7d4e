"""The operator interface: one kind of compression step, and what every part of paretone asks of it.

A recipe is a set of operator entries (``{"prune": {...}, "quantize": {...}}``). Each operator
validates itself against a teacher's structure, shapes the student's architecture, transforms the
built student (fake quantization, factorised layers), rewrites the student's kernel list for the
hardware models, describes itself in words and offers its search parameters. Adding an operator is
its module, one ``register_operator`` and its tests; nothing else spells its name.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from paretone._registry import Registry
from paretone.audio import FrontEndConfig, WaveformSet
from paretone.errors import ConfigError, names
from paretone.models import AudioModel, Kernel, LayerKernel, ModelStructure

if TYPE_CHECKING:
    from paretone.compress._front_end import FrontEndChoice

Frozen = Callable[[str], bool]  # is this unit, layer or "front_end" frozen by the space config?


@dataclass(frozen=True)
class Param:
    """One search parameter, independent of Optuna and JSON-serialisable (it is stored in studies).

    ``kind``: "int" (``low``..``high``), "float" (``low``..``high``, optional ``step`` or ``log``) or
    "categorical" (``choices``, the first one the teacher's own setting).
    """

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["choices"] = list(self.choices)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Param:
        return cls(**{**data, "choices": tuple(data.get("choices", ()))})


@dataclass(frozen=True)
class UniformSetting:
    """The uniform rule a user would try by hand: one kept fraction for every prunable unit, one
    runtime format for every layer that offers it, one front-end choice (None: the teacher's)."""

    keep: float
    format: str
    front_end: FrontEndChoice | None = None


@dataclass(frozen=True)
class StudentPlan:
    """What operators decide about the student's architecture: kept structures per unit and the
    front-end; the family turns it into a configuration."""

    kept: dict[str, int] = field(default_factory=dict)
    front_end: FrontEndConfig = field(default_factory=FrontEndConfig)


class Operator(ABC):
    """One compression step of a recipe.

    Contract: instances are frozen dataclasses, equal when their entries are equal; ``key`` names
    the entry in a recipe. ``from_entry`` and ``check`` raise ConfigError (one line saying what is
    wrong) and nothing else; the building hooks assume ``check`` passed. Hooks not overridden
    change nothing. Search-side class methods are pure functions of their arguments.
    """

    key: ClassVar[str]
    order: ClassVar[int]  # where it applies: architecture first, module transforms, quantization last
    settings: ClassVar[tuple[str, ...]] = ()  # the ``[space]`` keys of a search config it reads
    example_settings: ClassVar[dict[str, Any]] = {}  # settings that switch all its parameters on
    on_students: ClassVar[bool] = True  # searched on a new student architecture too (``student``)

    @classmethod
    @abstractmethod
    def from_entry(cls, entry: Any) -> Operator:
        """Parse the operator's recipe entry."""

    @abstractmethod
    def to_entry(self) -> dict[str, Any]:
        """The operator's recipe entry (JSON-plain)."""

    @abstractmethod
    def check(self, structure: ModelStructure) -> None:
        """ConfigError unless everything it names exists in ``structure`` and can run."""

    @abstractmethod
    def describe(self, structure: ModelStructure) -> list[str]:
        """Sentences for a model card."""

    def summary(self, structure: ModelStructure) -> str:
        """A few words for a table cell ('' when it changes nothing worth a column)."""
        return ""

    # -- building the student (in this order: plan, weights sliced by the family, transform) --

    def plan(self, structure: ModelStructure, plan: StudentPlan) -> StudentPlan:
        return plan

    def transform(
        self, student: AudioModel, *, data: WaveformSet | None = None, initialise: bool = True
    ) -> AudioModel:
        """Change the built student's modules. ``data``: a few training clips, for transforms that
        fit to activations; ``initialise=False``: shapes only (a checkpoint's weights follow)."""
        return student

    def kernels(self, kernels: list[LayerKernel]) -> list[LayerKernel]:
        return kernels

    # -- search ------------------------------------------------------------------------------

    @classmethod
    def parameters(
        cls, structure: ModelStructure, settings: Mapping[str, Any], frozen: Frozen
    ) -> list[Param]:
        """The search parameters it offers for a teacher (``settings``: its ``[space]`` keys)."""
        return []

    @classmethod
    def from_params(cls, values: Mapping[str, Any], params: Sequence[Param]) -> Operator | None:
        """The entry a sampled point describes (None when it leaves the teacher as it is)."""
        return None

    @classmethod
    def uniform(cls, params: Sequence[Param], setting: UniformSetting) -> dict[str, Any]:
        """Values of its parameters under the uniform rule."""
        return {}

    @classmethod
    def sweep(
        cls,
        kernels: set[Kernel],
        params: Sequence[Param],
        *,
        teacher: Any = None,
        chunk_samples: int | None = None,
    ) -> set[Kernel]:
        """Float kernels calibration must measure beyond the family's sweep ``kernels`` of the
        ``teacher`` configuration when the search offers ``params`` (shapes only this operator
        makes; with ``chunk_samples``, also those of one call on a stream); none by default."""
        return set()


OPERATORS: Registry[type[Operator]] = Registry("operator", order=lambda cls: cls.order)  # application order


def register_operator(cls: type[Operator]) -> type[Operator]:
    return OPERATORS.register(cls.key, cls)


def mapping(value: Any, where: str) -> dict[str, Any]:
    """``value`` as a dict with string keys; ConfigError saying where otherwise."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be an object, got {type(value).__name__}")
    return {str(k): v for k, v in value.items()}


def only(entry: Mapping[str, Any], known: Sequence[str], where: str) -> None:
    unknown = set(entry) - set(known)
    if unknown:
        raise ConfigError(f"{where} has unknown field(s) {names(unknown)}; known: {', '.join(known)}")


def number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    return float(value)


def number_pair(value: Any, where: str) -> tuple[float, float]:
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != 2:
        raise ConfigError(f"{where} must be [low, high], got {value!r}")
    return number(value[0], where), number(value[1], where)
