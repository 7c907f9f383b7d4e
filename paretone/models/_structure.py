"""What a model exposes to compression: its prunable units and quantizable layers, by name.

Names are module paths inside the model (``blocks.0.attn.q``), so a compression recipe can refer
to them and a state_dict key starts with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from paretone.audio import FrontEndConfig
from paretone.errors import ConfigError

# Kinds of prunable unit. Each removes whole rows/columns of the named modules' weights.
ATTENTION_HEADS = "attention_heads"  # whole heads of q, k, v and o at once
QK_CHANNELS = "qk_channels"  # channels inside every head, query and key paired
V_CHANNELS = "v_channels"  # channels inside every head, value and output paired
FFN_CHANNELS = "ffn_channels"  # hidden units of a feed-forward block
CONV_FILTERS = "conv_filters"  # output filters of a conv (and its BatchNorm, next conv's inputs)


@dataclass(frozen=True)
class PrunableUnit:
    """A group of structures that can be removed together; ``size`` counts them in this model."""

    name: str
    kind: str
    size: int
    modules: tuple[str, ...]


@dataclass(frozen=True)
class QuantizableLayer:
    """A weight layer that can run at a lower bit-width; ``kind`` is ``linear`` or ``conv2d``."""

    name: str
    kind: str
    in_features: int
    out_features: int
    params: int


@dataclass(frozen=True)
class ModelStructure:
    prunable: tuple[PrunableUnit, ...]
    quantizable: tuple[QuantizableLayer, ...]
    front_end: FrontEndConfig = field(default_factory=FrontEndConfig)  # students may compute it otherwise

    def unit(self, name: str) -> PrunableUnit:
        for unit in self.prunable:
            if unit.name == name:
                return unit
        raise KeyError(f"no prunable unit named {name!r}")


def positive(owner: str, **values: float) -> None:
    """ConfigError unless every value is a positive number (configs call it in ``__post_init__``)."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ConfigError(f"{owner}.{name} must be positive, got {value!r}")
