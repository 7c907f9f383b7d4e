"""How a user narrows the search space (the ``[space]`` table of a search config file).

Names are glob patterns over unit and layer names (``blocks.0.*``, ``*.ffn.fc2``):

    [space]
    freeze = ["blocks.0.*"]                 # keep these units whole and these layers float
    formats = {"*" = ["float", "w8a8"], "*.fc2" = ["float"]}   # allowed formats; first match wins
    min_keep = 0.25                          # smallest kept fraction of channels
    keep_step = 0.125
    temperature = [1.0, 8.0]                 # distillation temperature range (log-uniform)
    alpha = [0.0, 1.0]
    epochs = [2, 4]                          # fine-tuning lengths to search over (optional)
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from paretone.errors import ConfigError


@dataclass(frozen=True)
class SpaceConfig:
    freeze: tuple[str, ...] = ()
    formats: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    min_keep: float = 0.25
    keep_step: float = 0.125
    temperature: tuple[float, float] = (1.0, 8.0)
    alpha: tuple[float, float] = (0.0, 1.0)
    epochs: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not (0 < self.min_keep <= 1 and 0 < self.keep_step <= 1):
            raise ConfigError("space: min_keep and keep_step must be in (0, 1]")
        low, high = self.temperature
        if not (math.isfinite(low) and math.isfinite(high) and 0 < low <= high):
            raise ConfigError(f"space: temperature range {self.temperature} must be 0 < low <= high")
        if not 0 <= self.alpha[0] <= self.alpha[1] <= 1:
            raise ConfigError(f"space: alpha range {self.alpha} must be within [0, 1], low <= high")
        if any(e < 1 for e in self.epochs):
            raise ConfigError(f"space: epochs {self.epochs} must be >= 1")
        for pattern, choices in self.formats.items():
            if not choices:
                raise ConfigError(f"space: formats[{pattern!r}] allows nothing; list at least one format")

    def frozen(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self.freeze)

    def allowed_formats(self, layer: str, offered: tuple[str, ...]) -> tuple[str, ...]:
        """The formats of ``offered`` the first matching pattern allows (all if none matches)."""
        for pattern, choices in self.formats.items():
            if fnmatch.fnmatchcase(layer, pattern):
                unknown = set(choices) - set(offered)
                if unknown:
                    raise ConfigError(
                        f"space: {layer} cannot run {', '.join(sorted(unknown))}; "
                        f"its formats are {', '.join(offered)}"
                    )
                return tuple(c for c in offered if c in choices)
        return offered

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SpaceConfig:
        known = {"freeze", "formats", "min_keep", "keep_step", "temperature", "alpha", "epochs"}
        if not isinstance(data, Mapping):
            raise ConfigError("space: expected a table of settings")
        unknown = set(data) - known
        if unknown:
            raise ConfigError(
                f"space: unknown settings {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}"
            )
        try:
            return cls(
                freeze=tuple(str(p) for p in data.get("freeze", ())),
                formats={str(k): tuple(str(f) for f in v) for k, v in dict(data.get("formats", {})).items()},
                min_keep=float(data.get("min_keep", 0.25)),
                keep_step=float(data.get("keep_step", 0.125)),
                temperature=_pair(data.get("temperature", (1.0, 8.0)), "temperature"),
                alpha=_pair(data.get("alpha", (0.0, 1.0)), "alpha"),
                epochs=tuple(int(e) for e in data.get("epochs", ())),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"space: {exc}") from None


def _pair(value: Any, name: str) -> tuple[float, float]:
    if isinstance(value, str) or len(value) != 2:
        raise ConfigError(f"space: {name} must be [low, high], got {value!r}")
    return float(value[0]), float(value[1])
