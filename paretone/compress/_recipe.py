"""The recipe: the one description of a compressed model, as versioned JSON.

A recipe is a set of operator entries, at most one per operator::

    {"format": "paretone.recipe/2",
     "operators": {"prune": {"heads": {"blocks.0.attn.heads": 3}, "channels": {...}, "importance": "taylor"},
                   "quantize": {"formats": {"blocks.0.attn.q": "w8a8"}},
                   "distill": {"temperature": 4.0, "alpha": 0.7},
                   "front_end": {"implementation": "dft", "hop_length": 160}}}

Units it does not name are kept whole, layers it does not name stay float, and a recipe without a
``distill`` entry distils at the defaults. ``Recipe.check(structure)`` refuses anything the teacher
does not have or the runtime cannot run. Every ``paretone.recipe/1`` file (bit-widths per layer)
still reads: its bits name the same runtime formats.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from paretone._version import __version__
from paretone.compress._architecture import StudentArchitecture
from paretone.compress._distill import Distill
from paretone.compress._formats import format_for_bits
from paretone.compress._front_end import FrontEnd
from paretone.compress._operator import OPERATORS, Operator, StudentPlan, mapping
from paretone.compress._prune import Prune
from paretone.compress._quantize import Quantize
from paretone.errors import ConfigError, names
from paretone.models import Kernel, ModelStructure, family_of

RECIPE_FORMAT = "paretone.recipe/2"
RECIPE_V1 = "paretone.recipe/1"
T = TypeVar("T", bound=Operator)


def _order(op: Operator) -> int:
    return list(OPERATORS).index(op.key)


@dataclass(frozen=True)
class Recipe:
    """Operator entries in the order they apply (the operator registry's order). Entries equal to
    their operator's defaults say nothing and are dropped, so equal recipes compare equal."""

    operators: tuple[Operator, ...] = ()

    def __post_init__(self) -> None:
        keys = [op.key for op in self.operators]
        if len(set(keys)) != len(keys):
            raise ConfigError(f"recipe names an operator twice: {keys}")
        kept = tuple(sorted((op for op in self.operators if op != type(op)()), key=_order))
        object.__setattr__(self, "operators", kept)

    @classmethod
    def of(cls, *operators: Operator | None) -> Recipe:
        return cls(tuple(op for op in operators if op is not None))

    def get(self, kind: type[T]) -> T:
        """The entry of operator ``kind``, or its defaults (which change nothing) if absent."""
        return next((op for op in self.operators if isinstance(op, kind)), kind())

    def has(self, kind: type[Operator]) -> bool:
        return any(isinstance(op, kind) for op in self.operators)

    @property
    def distillation(self) -> Distill:
        return self.get(Distill)

    def check(self, structure: ModelStructure) -> None:
        """Raise ConfigError unless every entry fits ``structure`` (the base architecture's: see
        ``base_config``) and runs on the runtime."""
        for op in self.operators:
            op.check(structure)

    def base_config(self, teacher: Any) -> Any:
        """The architecture the other entries act on: the teacher's, or a new student's."""
        return self.get(StudentArchitecture).config_for(teacher)

    def base_structure(self, teacher: Any) -> ModelStructure:
        base = self.base_config(teacher)
        return family_of(base).structure(base)

    def plan(self, structure: ModelStructure) -> StudentPlan:
        plan = StudentPlan(front_end=structure.front_end)
        for op in self.operators:
            plan = op.plan(structure, plan)
        return plan

    def student_config(self, teacher: Any) -> Any:
        """The architecture the recipe leaves of a teacher configuration (no weights needed)."""
        base = self.base_config(teacher)
        family = family_of(base)
        plan = self.plan(family.structure(base))
        return family.student_config(base, kept=plan.kept, front_end=plan.front_end)

    def kernels(self, teacher: Any, *, chunk_samples: int | None = None) -> list[Kernel]:
        """The kernels of the student this recipe makes of ``teacher`` (configuration only).

        ``chunk_samples``: the kernels of one call on a stream of such chunks: a chunk's worth of
        frames for a student that streams, a whole window for one that cannot (it runs a window per
        chunk). ConfigError if the chunk is not a whole number of the student's hops."""
        config = self.student_config(teacher)
        family = family_of(config)
        if chunk_samples is not None and family.can_stream:
            config = stream_config(config, chunk_samples)
        placed = family.kernels(config)
        for op in self.operators:
            placed = op.kernels(placed)
        return [p.kernel for p in placed]

    def layer_formats(self, structure: ModelStructure) -> dict[str, str]:
        """Runtime format name per quantizable layer of the teacher (``float`` where silent)."""
        return self.get(Quantize).layer_formats(structure)

    def describe(self, structure: ModelStructure) -> list[str]:
        """One sentence per aspect (what every operator did, defaults included)."""
        return [line for cls in OPERATORS.values() for line in self.get(cls).describe(structure)]

    def summary(self, structure: ModelStructure) -> str:
        """A table cell: ``dft/hop160 heads 10/16 ch 62% w8a8x18 floatx7``."""
        parts = (self.get(cls).summary(structure) for cls in OPERATORS.values())
        return " ".join(p for p in parts if p)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": RECIPE_FORMAT,
            "paretone_version": __version__,
            "operators": {op.key: op.to_entry() for op in self.operators},
        }

    @classmethod
    def from_dict(cls, data: Any) -> Recipe:
        """Parse ``to_dict`` output (or a ``paretone.recipe/1`` file); ConfigError saying what is wrong."""
        if not isinstance(data, Mapping) or data.get("format") not in (RECIPE_FORMAT, RECIPE_V1):
            raise ConfigError(f"not a {RECIPE_FORMAT} recipe; write one with paretone (Recipe.to_dict)")
        try:
            if data["format"] == RECIPE_V1:
                return _from_v1(data)
            unknown = set(data) - {"format", "paretone_version", "operators"}
            if unknown:
                raise ConfigError(f"recipe has unknown field(s) {names(unknown)}")
            entries = mapping(data.get("operators", {}), "recipe operators")
            return cls(tuple(OPERATORS.named(key).from_entry(entry) for key, entry in entries.items()))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"malformed recipe ({exc!r}); compare it with Recipe.to_dict output") from None


def stream_config(config: Any, chunk_samples: int) -> Any:
    """``config`` as one call of its stream sees it: a clip of one chunk (ConfigError if the chunk
    is not a whole number of hops)."""
    fe = config.front_end
    if chunk_samples <= 0 or chunk_samples % fe.hop_length:
        raise ConfigError(
            f"a chunk of {chunk_samples} samples is not a whole number of {fe.hop_length}-sample hops"
        )
    return dataclasses.replace(config, front_end=dataclasses.replace(fe, clip_samples=chunk_samples))


def _bits(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"bit-width {value!r} is not a whole number or null")
    return value


def _from_v1(data: Mapping[str, Any]) -> Recipe:
    """A ``paretone.recipe/1`` dict: top-level heads, channels, precision (bits), distillation,
    importance and front_end."""
    known = {"format", "paretone_version", "heads", "channels", "precision", "distillation"}
    unknown = set(data) - known - {"importance", "front_end"}
    if unknown:
        raise ConfigError(f"recipe has unknown field(s) {names(unknown)}")
    formats = {}
    for layer, bits in mapping(data.get("precision", {}), "precision").items():
        bits = mapping(bits, f"precision[{layer!r}]")
        formats[layer] = format_for_bits(_bits(bits["weight_bits"]), _bits(bits["activation_bits"]))
    importance = data.get("importance", "magnitude")
    if not isinstance(importance, str):
        raise ConfigError(f"importance {importance!r} unknown")
    return Recipe.of(
        FrontEnd.from_entry(data.get("front_end", {})),
        Prune(
            mapping(data.get("heads", {}), "heads"), mapping(data.get("channels", {}), "channels"), importance
        ),
        Quantize(formats),
        Distill.from_entry(data.get("distillation", {})),
    )
