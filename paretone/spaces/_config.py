"""How a user narrows the search space (the ``[space]`` table of a search config file).

Names are glob patterns over unit and layer names (``blocks.0.*``, ``*.ffn.fc2``):

    [space]
    freeze = ["blocks.0.*"]                 # keep units whole, layers float; "front_end", "distill": defaults
    epochs = [2, 4]                          # fine-tuning lengths to search over (optional)
    formats = {"*" = ["float", "w8a8"], "*.fc2" = ["float"]}   # quantize: allowed formats, first match wins
    min_keep = 0.25                          # prune: smallest kept fraction of channels
    keep_step = 0.125
    temperature = [1.0, 8.0]                 # distill: temperature range (log-uniform)
    alpha = [0.0, 1.0]
    ranks = [0.125, 0.5]                     # factorize: searched rank fractions (off unless given)
    students = ["lstm:hidden=64", "gru:hidden=32,32;epochs=30"]  # student: new models beside the teacher

``freeze`` and ``epochs`` belong to the space; every other key belongs to the operator that
declares it (``Operator.settings``), which checks its value when the space is built.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from paretone.compress import OPERATORS
from paretone.errors import ConfigError

OWN_KEYS = ("freeze", "epochs")


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ConfigError(f'space: {name} must be a list of patterns, e.g. ["blocks.0.*"]; got {value!r}')
    if not all(isinstance(v, str) for v in value):
        raise ConfigError(f"space: {name} must list patterns (strings), got {value!r}")
    return tuple(value)


def _epochs(value: Any) -> tuple[int, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ConfigError(f"space: epochs must be a list of whole numbers, e.g. [2, 4]; got {value!r}")
    if not all(isinstance(e, int) and not isinstance(e, bool) and e >= 1 for e in value):
        raise ConfigError(f"space: epochs {value!r} must be whole numbers >= 1")
    return tuple(value)


@dataclass(frozen=True)
class SpaceConfig:
    freeze: tuple[str, ...] = ()
    epochs: tuple[int, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)  # the operators' keys, as given

    def __post_init__(self) -> None:
        _strings(list(self.freeze), "freeze")
        _epochs(list(self.epochs))

    def frozen(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self.freeze)

    def settings_for(self, keys: tuple[str, ...]) -> dict[str, Any]:
        return {k: self.settings[k] for k in keys if k in self.settings}

    @classmethod
    def from_dict(cls, data: Any) -> SpaceConfig:
        if not isinstance(data, Mapping):
            raise ConfigError("space: expected a table of settings")
        claimed = {key for op in OPERATORS.values() for key in op.settings}
        unknown = set(data) - claimed - set(OWN_KEYS)
        if unknown:
            known = ", ".join(sorted(claimed | set(OWN_KEYS)))
            raise ConfigError(f"space: unknown settings {', '.join(sorted(unknown))}; known: {known}")
        return cls(
            freeze=_strings(data.get("freeze", []), "freeze"),
            epochs=_epochs(data.get("epochs", [])),
            settings={k: v for k, v in data.items() if k in claimed},
        )
