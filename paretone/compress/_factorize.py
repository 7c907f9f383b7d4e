"""Operator ``factorize``: low-rank factorisation of linear layers, W (out x in) ~ V (out x r) U (r x in).

The entry names a rank per linear layer: a whole number, or a fraction of the layer's full rank
min(out, in) (rounded up to a multiple of 8, the width of the CPU's GEMM tiles). It applies after
pruning, to the pruned layer. The factors start from a truncated SVD of the weight (``init:
"svd"``) or of the weight scaled by the layer's input activations on a few training batches
(``"activation_svd"``: the error is weighted where the inputs are), then fine-tune with
distillation. Exported as two MatMuls (``layer.u`` then ``layer.v``), each converted to the layer's
runtime format. A rank that does not reduce the layer's parameters, or exceeds min(out, in), is
refused. Whether fewer MACs are also fewer milliseconds is the latency model's call, not assumed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import torch
from torch import nn

from paretone.audio import WaveformSet
from paretone.compress._operator import (
    Frozen,
    Operator,
    Param,
    UniformSetting,
    mapping,
    number_pair,
    only,
    register_operator,
)
from paretone.errors import ConfigError
from paretone.models import AudioModel, Kernel, LayerKernel, ModelStructure

INITS = ("svd", "activation_svd")
TILE = 8  # ranks are rounded up to multiples of this: GEMM kernels compute in tiles of 8 columns
FACTORABLE_KERNELS = ("linear", "linear_gelu")  # a token-wise linear layer, with or without GELU
RANK_FRACTIONS = (0.5, 0.25, 0.125)  # searched beside the full rank (1.0)


class FactorizedLinear(nn.Module):
    """``v(u(x))``: a linear layer of rank ``rank``; ``u`` has no bias, ``v`` the layer's."""

    def __init__(self, in_features: int, rank: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features, self.rank, self.out_features = in_features, rank, out_features
        self.u = nn.Linear(in_features, rank, bias=False)
        self.v = nn.Linear(rank, out_features, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.v(self.u(x))

    def quantizable_parts(self) -> dict[str, nn.Module]:
        """The leaf layers a runtime format applies to (each factor)."""
        return {"u": self.u, "v": self.v}


def resolve_rank(rank: int | float, out_features: int, in_features: int, layer: str) -> int:
    """The whole rank of ``rank`` for an (out x in) layer; ConfigError if it saves no parameters."""
    full = min(out_features, in_features)
    r = min(full, TILE * math.ceil(rank * full / TILE)) if isinstance(rank, float) else rank
    if r > full:
        raise ConfigError(f"recipe factorize.ranks[{layer!r}] = {rank}: exceeds min(out, in) = {full}")
    if r * (in_features + out_features) >= in_features * out_features:
        raise ConfigError(
            f"recipe factorize.ranks[{layer!r}] = {rank} (rank {r}) keeps as many parameters as the "
            f"{out_features} x {in_features} layer it factorises; choose a rank below "
            f"{in_features * out_features / (in_features + out_features):.0f}"
        )
    return r


@torch.no_grad()
def _input_scale(student: AudioModel, layer: str, data: WaveformSet, batches: int = 4) -> torch.Tensor:
    """The square root of the layer's input second moments (per input feature) on training clips."""
    module = dict(student.named_modules())[layer]
    total, count = torch.zeros(module.in_features), 0

    def record(_: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        nonlocal total, count
        x = inputs[0].reshape(-1, inputs[0].shape[-1])
        total += (x * x).sum(0)
        count += x.shape[0]

    handle = module.register_forward_pre_hook(record)
    was_training = student.training
    student.eval()
    try:
        for batch in data.waveforms[: batches * 32].split(32):
            student(batch)
    finally:
        handle.remove()
        student.train(was_training)
    return (total / max(count, 1)).sqrt().clamp_min(1e-6)


def factorize_linear(linear: nn.Linear, rank: int, scale: torch.Tensor | None = None) -> FactorizedLinear:
    """The rank-``rank`` truncated SVD of ``linear`` (of W diag(scale), when given: activation-aware)."""
    weight = linear.weight.detach().double()
    scaled = weight * scale.double() if scale is not None else weight
    u_svd, s, vh = torch.linalg.svd(scaled, full_matrices=False)
    root = s[:rank].sqrt()
    first = root[:, None] * vh[:rank]  # (rank, in)
    if scale is not None:
        first = first / scale.double()
    factorized = FactorizedLinear(linear.in_features, rank, linear.out_features, bias=linear.bias is not None)
    with torch.no_grad():
        factorized.u.weight.copy_(first.float())
        factorized.v.weight.copy_((u_svd[:, :rank] * root).float())
        if linear.bias is not None:
            factorized.v.bias.copy_(linear.bias)
    return factorized


@dataclass(frozen=True)
class Factorize(Operator):
    ranks: Mapping[str, int | float] = field(default_factory=dict)  # layer -> rank or fraction of full rank
    init: str = "svd"

    key = "factorize"
    on_students = False  # a new student's layers are already small
    order = 20  # after pruning (the pruned layer is factorised), before quantization (of each factor)
    settings = ("ranks",)
    example_settings: ClassVar[dict[str, Any]] = {"ranks": [0.1, 0.9]}

    def __post_init__(self) -> None:
        if self.init not in INITS:
            raise ConfigError(f"recipe factorize.init {self.init!r}: use one of {', '.join(INITS)}")
        for layer, rank in self.ranks.items():
            whole = isinstance(rank, int) and not isinstance(rank, bool) and rank >= 1
            fraction = isinstance(rank, float) and 0 < rank < 1
            if not (whole or fraction):
                raise ConfigError(
                    f"recipe factorize.ranks[{layer!r}] = {rank!r}: a whole rank >= 1 or a fraction in (0, 1)"
                )

    @classmethod
    def from_entry(cls, entry: Any) -> Factorize:
        entry = mapping(entry, "recipe factorize")
        only(entry, ("ranks", "init"), "recipe factorize")
        init = entry.get("init", "svd")
        if not isinstance(init, str):
            raise ConfigError(f"recipe factorize.init must be a name, got {init!r}")
        return cls(mapping(entry.get("ranks", {}), "recipe factorize.ranks"), init)

    def to_entry(self) -> dict[str, Any]:
        return {"ranks": dict(self.ranks), "init": self.init}

    def check(self, structure: ModelStructure) -> None:
        layers = {q.name: q for q in structure.quantizable}
        for name, rank in self.ranks.items():
            layer = layers.get(name)
            if layer is None or layer.kind != "linear":
                raise ConfigError(f"recipe factorize: {name!r} is not a linear layer of this model")
            resolve_rank(rank, layer.out_features, layer.in_features, name)

    def transform(
        self, student: AudioModel, *, data: WaveformSet | None = None, initialise: bool = True
    ) -> AudioModel:
        modules = dict(student.named_modules())
        for name, rank in self.ranks.items():
            linear = modules.get(name)
            if not isinstance(linear, nn.Linear):
                raise ConfigError(f"recipe factorize: {name!r} is not a linear layer of the student")
            r = resolve_rank(rank, linear.out_features, linear.in_features, name)
            if initialise:
                scale = _input_scale(student, name, data) if self.init == "activation_svd" and data else None
                replacement = factorize_linear(linear, r, scale)
            else:  # shapes only: a checkpoint's weights follow
                replacement = FactorizedLinear(
                    linear.in_features, r, linear.out_features, linear.bias is not None
                )
            parent, _, child = name.rpartition(".")
            setattr(modules[parent], child, replacement)
        return student

    def kernels(self, kernels: list[LayerKernel]) -> list[LayerKernel]:
        out = []
        for placed in kernels:
            rank = self.ranks.get(placed.layer or "")
            if rank is None:
                out.append(placed)
                continue
            k = placed.kernel
            if k.kind not in FACTORABLE_KERNELS:
                raise ConfigError(
                    f"recipe factorize: {placed.layer} runs as {k.kind}, which is not factorised"
                )
            d = k.dims
            r = resolve_rank(rank, d["out"], d["in"], placed.layer)  # type: ignore[arg-type]
            first = Kernel.of("matmul", k.format, tokens=d["tokens"], **{"in": d["in"], "out": r})
            second = replace(k, shape=(("tokens", d["tokens"]), ("in", r), ("out", d["out"])))
            out += [
                replace(placed, kernel=first),
                replace(placed, kernel=second),
            ]  # both in the layer's format
        return out

    def describe(self, structure: ModelStructure) -> list[str]:
        if not self.ranks:
            return []
        layers = {q.name: q for q in structure.quantizable}
        parts = []
        for name, rank in self.ranks.items():
            layer = layers[name]
            r = resolve_rank(rank, layer.out_features, layer.in_features, name)
            parts.append(f"{name} rank {r} of {min(layer.in_features, layer.out_features)}")
        return [f"Low-rank factorised ({self.init} init): " + ", ".join(parts) + "."]

    def summary(self, structure: ModelStructure) -> str:
        return f"lowrank x{len(self.ranks)}" if self.ranks else ""

    @classmethod
    def parameters(
        cls, structure: ModelStructure, settings: Mapping[str, Any], frozen: Frozen
    ) -> list[Param]:
        if frozen(cls.key) or "ranks" not in settings:  # searched only when asked for: it widens calibration
            return []
        low, high = number_pair(settings["ranks"], "space: ranks")
        if not 0 < low <= high < 1:
            raise ConfigError(
                f"space: ranks {[low, high]} must be fractions of the full rank, 0 < low <= high < 1"
            )
        fractions = tuple(f for f in RANK_FRACTIONS if low <= f <= high) or (low,)
        params = []
        for layer in structure.quantizable:
            if layer.kind != "linear" or frozen(layer.name):
                continue
            usable = []
            for f in fractions:
                try:
                    resolve_rank(f, layer.out_features, layer.in_features, layer.name)
                    usable.append(f)
                except ConfigError:
                    continue
            if usable:
                params.append(Param(f"rank:{layer.name}", "categorical", choices=(1.0, *usable)))
        return params

    @classmethod
    def from_params(cls, values: Mapping[str, Any], params: Sequence[Param]) -> Factorize | None:
        ranks = {}
        for p in params:
            value = float(values.get(p.name, 1.0))
            if value not in p.choices:
                raise ConfigError(f"{p.name} = {value!r} is not one of {p.choices}")
            if value < 1.0:
                ranks[p.name.removeprefix("rank:")] = value
        return cls(ranks) if ranks else None

    @classmethod
    def uniform(cls, params: Sequence[Param], setting: UniformSetting) -> dict[str, Any]:
        return {p.name: 1.0 for p in params}  # the uniform rule keeps full rank

    @classmethod
    def sweep(
        cls,
        kernels: set[Kernel],
        params: Sequence[Param],
        *,
        teacher: Any = None,
        chunk_samples: int | None = None,
    ) -> set[Kernel]:
        """The factor pair of every linear shape pruning can leave, at each searched rank fraction.

        Below the sweep's widths 8 and 16 lie pruned widths (heads x per-head channels) a factor can
        take although the swept width itself is too narrow to factorise: for those the narrowest
        factorisable width is measured too, so every proposed factor lies inside the measured range
        its regressor needs."""
        fractions = sorted({f for p in params for f in p.choices if f < 1.0})
        extra: set[Kernel] = set()
        for kernel in kernels:
            if kernel.kind not in FACTORABLE_KERNELS:
                continue
            for fraction in fractions:
                pair = cls._pair(kernel, fraction)
                if pair is not None:
                    extra |= pair
                    continue
                for side in ("in", "out"):  # the narrowest wider shape that factorises
                    width = dict(kernel.shape)[side]
                    for wider in range(width + 1, 2 * width + TILE + 1):
                        shape = tuple((n, wider if n == side else v) for n, v in kernel.shape)
                        pair = cls._pair(replace(kernel, shape=shape), fraction)
                        if pair is not None:
                            extra |= pair
                            break
        return extra

    @classmethod
    def _pair(cls, kernel: Kernel, fraction: float) -> set[Kernel] | None:
        """The two kernels ``kernel`` factorises into at ``fraction``; None if that saves nothing."""
        try:
            return {p.kernel for p in cls({"layer": fraction}).kernels([LayerKernel(kernel, "layer")])}
        except ConfigError:
            return None


register_operator(Factorize)
