"""The joint search space over one teacher: every operator's parameters, plus fine-tuning length.

Built from the teacher's structure by asking each registered operator for its parameters
(``Operator.parameters``), so it offers exactly what the operators can build and the exporter can
ship; ``recipe(values)`` turns a sampled point back into a ``Recipe`` the same way. The space
serialises to JSON (stored in the study, so a resumed search proves it searches the same space).

When the space offers new students beside the pruned teacher (``[space] students``), it has one
arm per student: the ``student`` parameter chooses the arm, and each arm carries its own
parameters for the operators that act on a new student (named ``<student>/<parameter>``); the
parameters of the arms not chosen are ignored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from paretone._version import __version__
from paretone.compress import (
    OPERATORS,
    TEACHER,
    FrontEnd,
    FrontEndChoice,
    Param,
    Recipe,
    StudentArchitecture,
    UniformSetting,
)
from paretone.errors import ConfigError
from paretone.models import ModelStructure, family_of
from paretone.spaces._config import SpaceConfig

SPACE_FORMAT = "paretone.space/2"
EPOCHS = "epochs"


Params = Mapping[str, tuple[Param, ...]]  # operator key -> its parameters


@dataclass(frozen=True)
class SearchSpace:
    params: Params = field(default_factory=dict)  # the pruned teacher's (and the student choice)
    epochs: tuple[int, ...] = ()  # fine-tuning lengths to choose from; empty: the search's default
    arms: Mapping[str, Params] = field(default_factory=dict)  # student choice -> its own parameters

    @classmethod
    def build(
        cls, structure: ModelStructure, config: SpaceConfig | None = None, *, teacher: Any = None
    ) -> SearchSpace:
        """The space over a teacher of ``structure``; ``teacher`` (its configuration) is needed
        when the config offers new students."""
        config = config or SpaceConfig()
        params = _operator_params(structure, config, students=False)
        arms = {}
        for choice in _choices(params.get(StudentArchitecture.key, ())):
            if teacher is None:
                raise ConfigError("space: offering students needs the teacher's configuration")
            base = StudentArchitecture.from_choice(choice).config_for(teacher)
            own = _operator_params(family_of(base).structure(base), config, students=True)
            arms[choice] = {
                key: tuple(dataclasses.replace(p, name=f"{choice}/{p.name}") for p in ps)
                for key, ps in own.items()
            }
        return cls(params, config.epochs, arms)

    def all_params(self) -> list[Param]:
        arms = [p for arm in self.arms.values() for params in arm.values() for p in params]
        return [p for params in self.params.values() for p in params] + arms

    def distributions(self) -> dict[str, Any]:
        """Optuna distributions by parameter name (for ``study.ask(fixed_distributions=...)``)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        out: dict[str, Any] = {}
        for p in self.all_params():
            if p.kind == "int":
                out[p.name] = IntDistribution(int(p.low), int(p.high))
            elif p.kind == "float":
                out[p.name] = FloatDistribution(p.low, p.high, step=p.step, log=p.log)
            else:
                out[p.name] = CategoricalDistribution(p.choices)
        if len(self.epochs) > 1:
            out[EPOCHS] = CategoricalDistribution(self.epochs)
        return out

    def arm_of(self, values: Mapping[str, Any]) -> str:
        """The student a point chooses (``TEACHER`` for the pruned teacher)."""
        choice = str(values.get(StudentArchitecture.key, TEACHER))
        if choice != TEACHER and choice not in self.arms:
            raise ConfigError(f"student {choice!r} is not offered by this search space")
        return choice

    def arm_params(self, arm: str = TEACHER) -> Params:
        """The parameters of one arm, by operator, named as its operators name them."""
        if arm == TEACHER:
            return self.params
        prefix = f"{arm}/"
        return {
            key: tuple(dataclasses.replace(p, name=p.name.removeprefix(prefix)) for p in ps)
            for key, ps in self.arms[arm].items()
        }

    def recipe(self, values: Mapping[str, Any]) -> Recipe:
        """The recipe a sampled point describes; ConfigError on a parameter this space lacks."""
        names = {p.name for p in self.all_params()}
        unknown = set(values) - names - {EPOCHS}
        if unknown:
            raise ConfigError(f"parameters not in this search space: {', '.join(sorted(unknown))}")
        arm = self.arm_of(values)
        params = self.arm_params(arm)
        if arm != TEACHER:
            prefix = f"{arm}/"
            values = {k.removeprefix(prefix): v for k, v in values.items() if k.startswith(prefix)}
        missing = {p.name for ps in params.values() for p in ps if p.kind != "categorical"} - set(values)
        if missing:
            raise ConfigError(f"parameters missing from the point: {', '.join(sorted(missing))}")
        student = StudentArchitecture.from_choice(arm) if arm != TEACHER else None
        return Recipe.of(student, *(OPERATORS[key].from_params(values, ps) for key, ps in params.items()))

    def arm_names(self) -> list[str]:
        return [TEACHER, *self.arms]

    def uniform(self, setting: UniformSetting, arm: str = TEACHER) -> dict[str, Any]:
        """Parameters of the uniform rule (see ``UniformSetting``) on one arm."""
        values: dict[str, Any] = {}
        for key, params in self.arm_params(arm).items():
            values |= OPERATORS[key].uniform(params, setting)
        if arm == TEACHER:
            return values
        return {StudentArchitecture.key: arm} | {f"{arm}/{k}": v for k, v in values.items()}

    def front_end_options(self, arm: str = TEACHER) -> list[FrontEndChoice | None]:
        """Every front-end choice, finest first; [None] if the front-end is fixed."""
        return FrontEnd.options(self.arm_params(arm).get(FrontEnd.key, ()))

    def epochs_for(self, values: Mapping[str, Any], default: int) -> int:
        if EPOCHS in values:
            return int(values[EPOCHS])
        return self.epochs[0] if self.epochs else default

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": SPACE_FORMAT,
            "paretone_version": __version__,
            "params": _params_to_dict(self.params),
            "epochs": list(self.epochs),
            "arms": {arm: _params_to_dict(params) for arm, params in self.arms.items()},
        }

    @classmethod
    def from_dict(cls, data: Any) -> SearchSpace:
        if not isinstance(data, Mapping) or data.get("format") != SPACE_FORMAT:
            raise ConfigError(
                f"not a {SPACE_FORMAT} search space (a study started by an older paretone cannot be "
                "resumed: start a new --study)"
            )
        try:
            arms = {str(arm): _params_from_dict(params) for arm, params in data.get("arms", {}).items()}
            return cls(_params_from_dict(data["params"]), tuple(int(e) for e in data.get("epochs", ())), arms)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"malformed search space ({exc!r})") from None


def _operator_params(structure: ModelStructure, config: SpaceConfig, *, students: bool) -> dict[str, tuple]:
    params = {
        key: tuple(op.parameters(structure, config.settings_for(op.settings), config.frozen))
        for key, op in OPERATORS.items()
        if op.on_students or not students
    }
    return {k: v for k, v in params.items() if v}


def _choices(params: tuple[Param, ...]) -> list[str]:
    return [str(c) for p in params for c in p.choices if c != TEACHER]


def _params_to_dict(params: Params) -> dict[str, list[dict[str, Any]]]:
    return {key: [p.to_dict() for p in ps] for key, ps in params.items()}


def _params_from_dict(data: Mapping[str, Any]) -> dict[str, tuple[Param, ...]]:
    return {str(key): tuple(Param.from_dict(p) for p in values) for key, values in data.items()}
