"""The joint search space over one teacher: every operator's parameters, plus fine-tuning length.

Built from the teacher's structure by asking each registered operator for its parameters
(``Operator.parameters``), so it offers exactly what the operators can build and the exporter can
ship; ``recipe(values)`` turns a sampled point back into a ``Recipe`` the same way. The space
serialises to JSON (stored in the study, so a resumed search proves it searches the same space).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from paretone._version import __version__
from paretone.compress import OPERATORS, FrontEnd, Param, Recipe, UniformSetting
from paretone.errors import ConfigError
from paretone.models import ModelStructure
from paretone.spaces._config import SpaceConfig

SPACE_FORMAT = "paretone.space/2"
EPOCHS = "epochs"


@dataclass(frozen=True)
class SearchSpace:
    params: Mapping[str, tuple[Param, ...]] = field(default_factory=dict)  # operator key -> parameters
    epochs: tuple[int, ...] = ()  # fine-tuning lengths to choose from; empty: the search's default

    @classmethod
    def build(cls, structure: ModelStructure, config: SpaceConfig | None = None) -> SearchSpace:
        config = config or SpaceConfig()
        params = {
            key: tuple(op.parameters(structure, config.settings_for(op.settings), config.frozen))
            for key, op in OPERATORS.items()
        }
        return cls({k: v for k, v in params.items() if v}, config.epochs)

    def all_params(self) -> list[Param]:
        return [p for params in self.params.values() for p in params]

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

    def recipe(self, values: Mapping[str, Any]) -> Recipe:
        """The recipe a sampled point describes; ConfigError on a parameter this space lacks."""
        names = {p.name for p in self.all_params()}
        unknown = set(values) - names - {EPOCHS}
        if unknown:
            raise ConfigError(f"parameters not in this search space: {', '.join(sorted(unknown))}")
        missing = {p.name for p in self.all_params() if p.kind != "categorical"} - set(values)
        if missing:
            raise ConfigError(f"parameters missing from the point: {', '.join(sorted(missing))}")
        return Recipe.of(*(OPERATORS[key].from_params(values, params) for key, params in self.params.items()))

    def uniform(self, setting: UniformSetting) -> dict[str, Any]:
        """Parameters of the uniform rule (see ``UniformSetting``)."""
        values: dict[str, Any] = {}
        for key, params in self.params.items():
            values |= OPERATORS[key].uniform(params, setting)
        return values

    def front_end_options(self) -> list[tuple[str, int] | None]:
        """Every (implementation, hop) choice, finest hop first; [None] if the front-end is fixed."""
        return FrontEnd.options(self.params.get(FrontEnd.key, ()))

    def epochs_for(self, values: Mapping[str, Any], default: int) -> int:
        if EPOCHS in values:
            return int(values[EPOCHS])
        return self.epochs[0] if self.epochs else default

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": SPACE_FORMAT,
            "paretone_version": __version__,
            "params": {key: [p.to_dict() for p in params] for key, params in self.params.items()},
            "epochs": list(self.epochs),
        }

    @classmethod
    def from_dict(cls, data: Any) -> SearchSpace:
        if not isinstance(data, Mapping) or data.get("format") != SPACE_FORMAT:
            raise ConfigError(
                f"not a {SPACE_FORMAT} search space (a study started by an older paretone cannot be "
                "resumed: start a new --study)"
            )
        try:
            params = {
                str(key): tuple(Param.from_dict(p) for p in values) for key, values in data["params"].items()
            }
            return cls(params, tuple(int(e) for e in data.get("epochs", ())))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"malformed search space ({exc!r})") from None
