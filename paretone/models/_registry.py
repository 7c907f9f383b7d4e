"""The registry of model families, by name (the ``family`` field of every configuration)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from paretone._registry import Registry
from paretone.errors import ConfigError
from paretone.models._kernels import Kernel

# name -> ``Family`` instance; typed Any here so that this module, which every family module and
# ``AudioModel`` import, imports neither of them
FAMILIES: Registry[Any] = Registry("model family")


def register_family(family: Any) -> Any:
    return FAMILIES.register(family.name, family)


def family_named(name: str) -> Any:
    return FAMILIES.named(name)


def family_of(config: Any) -> Any:
    """The family a configuration belongs to (by its ``family`` attribute)."""
    name = getattr(config, "family", None)
    if not isinstance(name, str):
        raise ConfigError(f"{type(config).__name__} is not a model configuration")
    return family_named(name)


def config_to_dict(config: Any) -> dict[str, Any]:
    return family_of(config).config_to_dict(config)


def config_from_dict(data: Any) -> Any:
    """Rebuild a config from ``config_to_dict`` output; ConfigError naming what is wrong otherwise."""
    if not isinstance(data, Mapping) or not isinstance(data.get("family"), str):
        raise ConfigError("invalid model config (no family); re-create it with paretone")
    return family_named(data["family"]).config_from_dict(data)


def build_model(config: Any) -> Any:
    return family_of(config).build(config)


def model_kernels(config: Any) -> list[Kernel]:
    """Every kernel of a model of ``config``, all float (a compressed student's come from its recipe)."""
    return [placed.kernel for placed in family_of(config).kernels(config)]
