"""Operator ``quantize``: per-layer mixed precision in formats ONNX Runtime really executes.

The entry names a runtime format per layer (``{"formats": {"blocks.0.attn.q": "w8a8"}}``, names
from ``RUNTIME_FORMATS``); layers it does not name stay float. Training fake-quantizes each layer on
exactly the grid its format computes on; export converts each layer with its format's converter and
verifies the written graph.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from torch import nn

from paretone.audio import WaveformSet
from paretone.compress._fake_quant import attach_fake_quant
from paretone.compress._formats import FLOAT, RuntimeFormat, formats_for, runtime_format
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
from paretone.models import AudioModel, LayerKernel, ModelStructure


@dataclass(frozen=True)
class Quantize(Operator):
    formats: Mapping[str, str] = field(default_factory=dict)  # layer -> runtime format name

    key = "quantize"
    order = 30
    settings = ("formats",)

    def __post_init__(self) -> None:
        for layer, name in self.formats.items():
            if not isinstance(name, str):
                raise ConfigError(f"recipe quantize.formats[{layer!r}] = {name!r}: name a runtime format")
        # "float" entries say nothing: dropped so that equal recipes compare equal
        object.__setattr__(self, "formats", {k: v for k, v in self.formats.items() if v != FLOAT})

    @classmethod
    def from_entry(cls, entry: Any) -> Quantize:
        entry = mapping(entry, "recipe quantize")
        only(entry, ("formats",), "recipe quantize")
        return cls(mapping(entry.get("formats", {}), "recipe quantize.formats"))

    def to_entry(self) -> dict[str, Any]:
        return {"formats": dict(self.formats)}

    def check(self, structure: ModelStructure) -> None:
        layers = {q.name: q for q in structure.quantizable}
        for name, fmt in self.formats.items():
            layer = layers.get(name)
            if layer is None:
                raise ConfigError(f"recipe quantize: {name!r} is not a quantizable layer of this model")
            runtime_format(layer.kind, fmt)  # raises naming the formats this layer offers

    def format_of(self, layer: str, layer_kind: str) -> RuntimeFormat:
        return runtime_format(layer_kind, self.formats.get(layer, FLOAT))

    def layer_formats(self, structure: ModelStructure) -> dict[str, str]:
        """Runtime format name per quantizable layer (``float`` where the entry is silent)."""
        return {q.name: self.formats.get(q.name, FLOAT) for q in structure.quantizable}

    def transform(
        self, student: AudioModel, *, data: WaveformSet | None = None, initialise: bool = True
    ) -> AudioModel:
        kinds = {q.name: q.kind for q in student.structure().quantizable}
        formats = {}
        for name, fmt in self.formats.items():
            for leaf in leaf_layers(student, name):  # each factor of a factorised layer
                formats[leaf] = runtime_format(kinds[name], fmt)
        return attach_fake_quant(student, formats)

    def kernels(self, kernels: list[LayerKernel]) -> list[LayerKernel]:
        out = []
        for placed in kernels:
            name = self.formats.get(placed.layer or "")
            if name is not None:
                kind = placed.kernel.layer_kind
                if kind is None:
                    raise ConfigError(f"layer {placed.layer}: its kernel {placed.kernel.kind} has no formats")
                runtime_format(kind, name)
                placed = replace(placed, kernel=replace(placed.kernel, format=name))
            out.append(placed)
        return out

    def describe(self, structure: ModelStructure) -> list[str]:
        counts = Counter(self.layer_formats(structure).values())
        return ["Layer formats: " + ", ".join(f"{n} x {fmt}" for fmt, n in counts.most_common()) + "."]

    def summary(self, structure: ModelStructure) -> str:
        counts = Counter(self.layer_formats(structure).values())
        return " ".join(f"{fmt}x{n}" for fmt, n in counts.most_common())

    @classmethod
    def parameters(
        cls, structure: ModelStructure, settings: Mapping[str, Any], frozen: Frozen
    ) -> list[Param]:
        patterns = _patterns(settings.get("formats", {}))
        params = []
        for layer in structure.quantizable:
            if frozen(layer.name):
                continue
            offered = tuple(f.name for f in formats_for(layer.kind))
            allowed = _allowed(patterns, layer.name, offered)
            if len(allowed) > 1 or (allowed and allowed[0] != FLOAT):
                params.append(Param(f"format:{layer.name}", "categorical", choices=allowed))
        return params

    @classmethod
    def from_params(cls, values: Mapping[str, Any], params: Sequence[Param]) -> Quantize | None:
        formats = {}
        for p in params:
            name = str(values.get(p.name, p.choices[0]))
            if name not in p.choices:
                raise ConfigError(f"{p.name} = {name!r} is not one of {p.choices}")
            if name != FLOAT:
                formats[p.name.removeprefix("format:")] = name
        return cls(formats) if formats else None

    @classmethod
    def uniform(cls, params: Sequence[Param], setting: UniformSetting) -> dict[str, Any]:
        return {p.name: setting.format if setting.format in p.choices else p.choices[0] for p in params}


def leaf_layers(student: nn.Module, layer: str) -> list[str]:
    """The modules that carry a structure layer's weights: the layer itself, or its parts when a
    transform split it (``quantizable_parts()``: a factorised layer's two factors)."""
    module = dict(student.named_modules())[layer]
    parts = getattr(module, "quantizable_parts", None)
    return [f"{layer}.{part}" for part in parts()] if parts is not None else [layer]


def _patterns(value: Any) -> dict[str, tuple[str, ...]]:
    """The ``formats`` setting: glob pattern -> allowed format names (first match wins)."""
    patterns = {}
    for pattern, choices in mapping(value, "space: formats").items():
        if isinstance(choices, str) or not isinstance(choices, list | tuple):
            raise ConfigError(f"space: formats[{pattern!r}] must be a list of format names, got {choices!r}")
        if not choices:
            raise ConfigError(f"space: formats[{pattern!r}] allows nothing; list at least one format")
        if not all(isinstance(c, str) for c in choices):
            raise ConfigError(f"space: formats[{pattern!r}] must list format names, got {choices!r}")
        patterns[pattern] = tuple(choices)
    return patterns


def _allowed(
    patterns: Mapping[str, tuple[str, ...]], layer: str, offered: tuple[str, ...]
) -> tuple[str, ...]:
    for pattern, choices in patterns.items():
        if fnmatch.fnmatchcase(layer, pattern):
            unknown = set(choices) - set(offered)
            if unknown:
                raise ConfigError(
                    f"space: {layer} cannot run {', '.join(sorted(unknown))}; "
                    f"its formats are {', '.join(offered)}"
                )
            return tuple(c for c in offered if c in choices)
    return offered


register_operator(Quantize)
