"""The joint search space over one teacher: heads, channels, per-layer formats, distillation.

Built by introspecting the teacher's structure (prunable units, quantizable layers) and the runtime
format table, so it offers exactly what the exporter can ship. Parameters are named
``heads:<unit>``, ``keep:<unit>``, ``format:<layer>``, ``front_end`` (implementation),
``hop_length``, ``kd_temperature``, ``kd_alpha`` and, optionally, ``epochs``; ``recipe(params)``
turns a sampled point into a ``Recipe``. Freeze ``front_end`` in the config to keep the teacher's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from paretone import __version__
from paretone.compress import (
    Distillation,
    FrontEndChoice,
    LayerPrecision,
    Recipe,
    formats_for,
    front_end_options,
)
from paretone.errors import ConfigError
from paretone.models import ATTENTION_HEADS, ModelStructure
from paretone.spaces._config import SpaceConfig

SPACE_FORMAT = "paretone.space/1"


@dataclass(frozen=True)
class SearchSpace:
    heads: Mapping[str, int] = field(default_factory=dict)  # unit -> teacher's head count
    keep: Mapping[str, tuple[float, float, float]] = field(default_factory=dict)  # unit -> (low, high, step)
    formats: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # layer -> format names
    layer_kinds: Mapping[str, str] = field(default_factory=dict)  # layer -> "linear" / "conv2d"
    temperature: tuple[float, float] = (1.0, 8.0)
    alpha: tuple[float, float] = (0.0, 1.0)
    epochs: tuple[int, ...] = ()  # fine-tuning lengths to choose from; empty: the search's default
    implementations: tuple[str, ...] = ()  # front-end implementations, the teacher's first
    hop_lengths: tuple[int, ...] = ()  # front-end hops in samples, the teacher's first

    @classmethod
    def build(cls, structure: ModelStructure, config: SpaceConfig | None = None) -> SearchSpace:
        config = config or SpaceConfig()
        heads, keep, formats, kinds = {}, {}, {}, {}
        for unit in structure.prunable:
            if config.frozen(unit.name):
                continue
            if unit.kind == ATTENTION_HEADS:
                if unit.size > 1:
                    heads[unit.name] = unit.size
            else:
                low = max(config.min_keep, 1 / unit.size)
                step = config.keep_step
                low = min(1.0, math.ceil(low / step - 1e-9) * step)
                if low < 1.0:
                    keep[unit.name] = (round(low, 6), 1.0, step)
        for layer in structure.quantizable:
            if config.frozen(layer.name):
                continue
            offered = tuple(f.name for f in formats_for(layer.kind))
            allowed = config.allowed_formats(layer.name, offered)
            if len(allowed) > 1 or (allowed and allowed[0] != "float"):
                formats[layer.name] = allowed
                kinds[layer.name] = layer.kind
        implementations, hops = front_end_options(structure.front_end)
        if config.frozen("front_end"):
            implementations, hops = implementations[:1], hops[:1]
        return cls(
            heads,
            keep,
            formats,
            kinds,
            config.temperature,
            config.alpha,
            config.epochs,
            implementations,
            hops,
        )

    def distributions(self) -> dict[str, Any]:
        """Optuna distributions by parameter name (for ``study.ask(fixed_distributions=...)``)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        out: dict[str, Any] = {}
        for unit, size in self.heads.items():
            out[f"heads:{unit}"] = IntDistribution(1, size)
        for unit, (low, high, step) in self.keep.items():
            out[f"keep:{unit}"] = FloatDistribution(low, high, step=step)
        for layer, choices in self.formats.items():
            out[f"format:{layer}"] = CategoricalDistribution(choices)
        if len(self.implementations) > 1:
            out["front_end"] = CategoricalDistribution(self.implementations)
        if len(self.hop_lengths) > 1:
            out["hop_length"] = CategoricalDistribution(self.hop_lengths)
        out["kd_temperature"] = FloatDistribution(*self.temperature, log=True)
        out["kd_alpha"] = FloatDistribution(*self.alpha)
        if len(self.epochs) > 1:
            out["epochs"] = CategoricalDistribution(self.epochs)
        return out

    def recipe(self, params: Mapping[str, Any]) -> Recipe:
        """The recipe a sampled point describes; ConfigError on a parameter this space lacks."""
        unknown = set(params) - set(self.distributions()) - {"epochs"}
        if unknown:
            raise ConfigError(f"parameters not in this search space: {', '.join(sorted(unknown))}")
        heads = {
            u: int(params[f"heads:{u}"]) for u in self.heads if int(params[f"heads:{u}"]) < self.heads[u]
        }
        channels = {u: float(params[f"keep:{u}"]) for u in self.keep if float(params[f"keep:{u}"]) < 1.0}
        precision = {}
        for layer, choices in self.formats.items():
            name = str(params.get(f"format:{layer}", choices[0]))
            fmt = next((f for f in formats_for(self.layer_kinds[layer]) if f.name == name), None)
            if fmt is None or name not in choices:
                raise ConfigError(f"format:{layer} = {name!r} is not one of {choices}")
            if name != "float":
                precision[layer] = LayerPrecision(fmt.weight_bits, fmt.activation_bits)
        distillation = Distillation(float(params["kd_temperature"]), float(params["kd_alpha"]))
        return Recipe(
            heads=heads,
            channels=channels,
            precision=precision,
            distillation=distillation,
            front_end=self._front_end(params),
        )

    def _front_end(self, params: Mapping[str, Any]) -> FrontEndChoice:
        """The sampled front-end; ``None`` fields where it is the teacher's (the first option)."""
        if not self.implementations or not self.hop_lengths:
            return FrontEndChoice()
        implementation = params.get("front_end", self.implementations[0])
        hop = params.get("hop_length", self.hop_lengths[0])
        if implementation not in self.implementations:
            raise ConfigError(f"front_end = {implementation!r} is not one of {self.implementations}")
        if hop not in self.hop_lengths:
            raise ConfigError(f"hop_length = {hop!r} is not one of {self.hop_lengths}")
        return FrontEndChoice(
            None if implementation == self.implementations[0] else str(implementation),
            None if hop == self.hop_lengths[0] else int(hop),
        )

    def front_end_choices(self) -> list[tuple[str, int]]:
        """Every (implementation, hop) pair, finest hop first: coarser hops cost accuracy."""
        return [(i, h) for h in self.hop_lengths for i in self.implementations]

    def epochs_for(self, params: Mapping[str, Any], default: int) -> int:
        if "epochs" in params:
            return int(params["epochs"])
        return self.epochs[0] if self.epochs else default

    def uniform(self, keep: float, fmt: str, front_end: tuple[str, int] | None = None) -> dict[str, Any]:
        """Parameters of the uniform baseline: one kept fraction everywhere, one format everywhere,
        and the given (implementation, hop) front-end (default: the teacher's)."""
        params: dict[str, Any] = {}
        if len(self.implementations) > 1:
            params["front_end"] = front_end[0] if front_end else self.implementations[0]
        if len(self.hop_lengths) > 1:
            params["hop_length"] = front_end[1] if front_end else self.hop_lengths[0]
        for unit, size in self.heads.items():
            params[f"heads:{unit}"] = max(1, round(size * keep))
        for unit, (low, high, step) in self.keep.items():
            params[f"keep:{unit}"] = min(high, max(low, round(keep / step) * step))
        for layer, choices in self.formats.items():
            params[f"format:{layer}"] = fmt if fmt in choices else choices[0]
        params["kd_temperature"] = math.sqrt(self.temperature[0] * self.temperature[1])
        params["kd_alpha"] = sum(self.alpha) / 2
        return params

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["keep"] = {u: list(v) for u, v in self.keep.items()}
        data["formats"] = {k: list(v) for k, v in self.formats.items()}
        return {"format": SPACE_FORMAT, "paretone_version": __version__, **data}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchSpace:
        if not isinstance(data, Mapping) or data.get("format") != SPACE_FORMAT:
            raise ConfigError(f"not a {SPACE_FORMAT} search space")
        try:
            return cls(
                heads={str(u): int(n) for u, n in data["heads"].items()},
                keep={str(u): tuple(float(x) for x in v) for u, v in data["keep"].items()},  # type: ignore[misc]
                formats={str(k): tuple(str(f) for f in v) for k, v in data["formats"].items()},
                layer_kinds={str(k): str(v) for k, v in data["layer_kinds"].items()},
                temperature=tuple(float(x) for x in data["temperature"]),  # type: ignore[arg-type]
                alpha=tuple(float(x) for x in data["alpha"]),  # type: ignore[arg-type]
                epochs=tuple(int(e) for e in data.get("epochs", ())),
                implementations=tuple(str(i) for i in data.get("implementations", ())),
                hop_lengths=tuple(int(h) for h in data.get("hop_lengths", ())),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"malformed search space ({exc!r})") from None
