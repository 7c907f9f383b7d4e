"""Kernels: the pieces of a deployed graph that latency and memory are predicted for.

A kernel is one piece of the exported graph with its shape and runtime format: a linear layer in
w8a8, the attention of a block with 3 heads, the log-mel front-end. It is chosen so that ONNX
Runtime's fusions stay inside one kernel (the bias and GELU of ``fc1`` fuse into ``BiasGelu``, so
``linear_gelu`` is one kernel), and so that the kernels of a model add up to all of its arithmetic.
Families list their kernels from a configuration without exporting anything, which is what lets
the search predict a candidate's cost in microseconds.

Each kind of kernel is one ``KernelKind`` in ``KERNEL_KINDS``: its shape fields, what it costs in
MACs, parameters and memory, and the float ONNX graph that calibration measures (quantized
micro-models are derived from it by the exporter's own converters). Kinds shared by several
families live here; a family registers its own kinds in its module.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from paretone._registry import Registry
from paretone.audio import FrontEndConfig, LogMel
from paretone.errors import ConfigError
from paretone.runtime import IR_VERSION, OPSET

LAYER_NODE = "layer"  # the node of a micro-model that a quantized format applies to
Dims = Mapping[str, int]
Graph = tuple[list, list, list, list]  # (nodes, inputs, outputs, initializers) of a float micro-model


@dataclass(frozen=True)
class KernelKind:
    """One kind of kernel. ``layer_kind`` ("linear", "conv2d") if its format follows the recipe's
    choice for the layer it computes, None if it always runs as it is (its ``format`` then names
    an implementation, e.g. the front-end's "stft" or "dft", or is "float")."""

    name: str
    fields: tuple[str, ...]
    layer_kind: str | None
    macs: Callable[[Dims, str], int]  # Conv/MatMul/Gemm multiply-accumulates (dims, format)
    activation_bytes: Callable[[Dims], int]  # fp32 bytes of the tensors live while it runs
    graph: Callable[[Dims, str, np.random.Generator], onnx.ModelProto | Graph]
    params: Callable[[Dims], int] = lambda d: 0  # trainable parameters it stands for
    computed_weight_bytes: Callable[[Dims, str], int] = lambda d, f: 0  # weights built at load


KERNEL_KINDS: Registry[KernelKind] = Registry("kernel kind")


def register_kernel_kind(kind: KernelKind) -> KernelKind:
    return KERNEL_KINDS.register(kind.name, kind)


@dataclass(frozen=True)
class Kernel:
    kind: str
    format: str  # a runtime format name ("float", "w8a8", "w4", ...); the front-end's implementation
    shape: tuple[tuple[str, int], ...]

    def __post_init__(self) -> None:
        spec = KERNEL_KINDS.named(self.kind)
        if tuple(name for name, _ in self.shape) != spec.fields:
            raise ConfigError(f"kernel {self.kind} needs shape fields {spec.fields}, got {self.shape}")

    @classmethod
    def of(cls, kind: str, fmt: str = "float", **shape: int) -> Kernel:
        spec = KERNEL_KINDS.get(kind)
        names = spec.fields if spec is not None else tuple(shape)
        try:
            return cls(kind, fmt, tuple((name, int(shape[name])) for name in names))
        except KeyError as exc:
            raise ConfigError(f"kernel {kind} lacks shape field {exc.args[0]!r}") from None

    @property
    def spec(self) -> KernelKind:
        return KERNEL_KINDS[self.kind]

    @property
    def dims(self) -> dict[str, int]:
        return dict(self.shape)

    @property
    def key(self) -> str:
        """Unique, readable name, e.g. ``linear/w8a8/tokens=50,in=192,out=64``."""
        return f"{self.kind}/{self.format}/" + ",".join(f"{n}={v}" for n, v in self.shape)

    @property
    def layer_kind(self) -> str | None:
        return self.spec.layer_kind

    @property
    def quantized(self) -> bool:
        return self.spec.layer_kind is not None and self.format != "float"

    @property
    def macs(self) -> int:
        """Multiply-accumulates in its Conv/MatMul/Gemm nodes (the STFT op is not counted)."""
        return self.spec.macs(self.dims, self.format)

    @property
    def params(self) -> int:
        """Trainable parameters of the PyTorch layers it stands for (BatchNorm folded into conv)."""
        return self.spec.params(self.dims)

    @property
    def computed_weight_bytes(self) -> int:
        """fp32 bytes of weights the graph computes when the session loads instead of storing them
        (the "dft" front-end's cos/sin kernel); ONNX Runtime's constant folding holds them and their
        intermediates in memory, so they count towards peak memory but not file bytes."""
        return self.spec.computed_weight_bytes(self.dims, self.format)

    @property
    def activation_bytes(self) -> int:
        return self.spec.activation_bytes(self.dims)

    def float_graph(self, rng: np.random.Generator) -> onnx.ModelProto:
        """The micro-model of this kernel before any quantization (its layer node named LAYER_NODE)."""
        built = self.spec.graph(self.dims, self.format, rng)
        if isinstance(built, onnx.ModelProto):
            return built
        nodes, inputs, outputs, inits = built
        graph = helper.make_graph(nodes, self.kind, inputs, outputs, inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "format": self.format, "shape": self.dims}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Kernel:
        try:
            return cls.of(data["kind"], data["format"], **data["shape"])
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise ConfigError(f"malformed kernel record {dict(data)!r}: {exc}") from None


@dataclass(frozen=True)
class LayerKernel:
    """A kernel at its place in a model: ``layer`` is the quantizable layer it computes (its format
    follows that layer's), None for the fixed parts (front-end, attention, norms, pooling)."""

    kernel: Kernel
    layer: str | None = None


# -- graph helpers shared by every kind ------------------------------------------------------


def value(name: str, shape: list[int]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def const(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ascontiguousarray(array), name)


def weights(rng: np.random.Generator, *shape: int) -> np.ndarray:
    fan_in = int(np.prod(shape[1:])) if len(shape) > 2 else shape[0]
    return (rng.standard_normal(shape) / np.sqrt(max(fan_in, 1))).astype(np.float32)


# -- the front-end -----------------------------------------------------------------------------


class _FrontEndOnly(nn.Module):
    def __init__(self, config: FrontEndConfig) -> None:
        super().__init__()
        self.front_end = LogMel(config)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.front_end(waveform)


def front_end_kernel(config: FrontEndConfig) -> Kernel:
    return Kernel.of(
        "frontend",
        config.implementation,
        samples=config.clip_samples,
        n_fft=config.n_fft,
        hop=config.hop_length,
        n_mels=config.n_mels,
        utterance_norm=int(config.normalization == "utterance"),
        causal=int(config.padding == "causal"),
    )


def _frontend_config(d: Dims, implementation: str) -> FrontEndConfig:
    return FrontEndConfig(
        clip_samples=d["samples"],
        n_fft=d["n_fft"],
        hop_length=d["hop"],
        n_mels=d["n_mels"],
        normalization="utterance" if d["utterance_norm"] else "none",
        implementation=implementation,
        padding="causal" if d["causal"] else "center",
    )


def _frontend_graph(d: Dims, implementation: str, rng: np.random.Generator) -> onnx.ModelProto:
    from paretone.models._onnx import export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(_FrontEndOnly(_frontend_config(d, implementation)), Path(tmp) / "frontend.onnx")
        return onnx.load(str(path))


def _frames(d: Dims) -> int:
    return (d["samples"] - d["hop"]) // d["hop"] + 1 if d["causal"] else d["samples"] // d["hop"] + 1


def _frontend_macs(d: Dims, implementation: str) -> int:
    frames, freqs = _frames(d), d["n_fft"] // 2 + 1
    dft = frames * 2 * freqs * d["n_fft"] if implementation == "dft" else 0
    return frames * freqs * d["n_mels"] + dft


FRONTEND = register_kernel_kind(
    KernelKind(
        "frontend",
        ("samples", "n_fft", "hop", "n_mels", "utterance_norm", "causal"),
        None,
        macs=_frontend_macs,
        activation_bytes=lambda d: (
            4 * (d["samples"] + _frames(d) * ((d["n_fft"] // 2 + 1) * 2 + d["n_mels"]))
        ),
        graph=_frontend_graph,
        computed_weight_bytes=lambda d, f: 4 * 2 * (d["n_fft"] // 2 + 1) * d["n_fft"] if f == "dft" else 0,
    )
)


# -- linear layers over tokens ---------------------------------------------------------------


def _linear_graph(gelu: bool) -> Callable[[Dims, str, np.random.Generator], Graph]:
    def graph(d: Dims, _: str, rng: np.random.Generator) -> Graph:
        t, n_in, n_out = d["tokens"], d["in"], d["out"]
        make = helper.make_node
        nodes = [make("MatMul", ["x", "w"], ["mm"], name=LAYER_NODE), make("Add", ["mm", "b"], ["y0"])]
        nodes.append(make("Gelu", ["y0"], ["y"]) if gelu else make("Identity", ["y0"], ["y"]))
        inits = [const("w", weights(rng, n_in, n_out)), const("b", np.zeros(n_out, np.float32))]
        return nodes, [value("x", [1, t, n_in])], [value("y", [1, t, n_out])], inits

    return graph


for _name, _gelu in (("linear", False), ("linear_gelu", True)):
    register_kernel_kind(
        KernelKind(
            _name,
            ("tokens", "in", "out"),
            "linear",
            macs=lambda d, f: d["tokens"] * d["in"] * d["out"],
            activation_bytes=lambda d: 4 * d["tokens"] * (d["in"] + 2 * d["out"]),
            graph=_linear_graph(_gelu),
            params=lambda d: (d["in"] + 1) * d["out"],
        )
    )


def _matmul_graph(d: Dims, _: str, rng: np.random.Generator) -> Graph:
    t, n_in, n_out = d["tokens"], d["in"], d["out"]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name=LAYER_NODE)]
    inits = [const("w", weights(rng, n_in, n_out))]
    return nodes, [value("x", [1, t, n_in])], [value("y", [1, t, n_out])], inits


MATMUL = register_kernel_kind(  # a linear layer without bias (the first factor of a factorised layer)
    KernelKind(
        "matmul",
        ("tokens", "in", "out"),
        "linear",
        macs=lambda d, f: d["tokens"] * d["in"] * d["out"],
        activation_bytes=lambda d: 4 * d["tokens"] * (d["in"] + d["out"]),
        graph=_matmul_graph,
        params=lambda d: d["in"] * d["out"],
    )
)


# -- convolutions over a (channels, mels, frames) map ----------------------------------------------


def _conv_relu_graph(d: Dims, _: str, rng: np.random.Generator) -> Graph:
    c_in, c_out, hgt, wid = d["in"], d["out"], d["height"], d["width"]
    make = helper.make_node
    nodes = [
        make("Conv", ["x", "w", "b"], ["c"], name=LAYER_NODE, kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        make("Relu", ["c"], ["y"]),
    ]
    inits = [const("w", weights(rng, c_out, c_in, 3, 3)), const("b", np.zeros(c_out, np.float32))]
    return nodes, [value("x", [1, c_in, hgt, wid])], [value("y", [1, c_out, hgt, wid])], inits


CONV_RELU = register_kernel_kind(
    KernelKind(
        "conv_relu",
        ("in", "out", "height", "width"),
        "conv2d",
        macs=lambda d, f: d["in"] * d["out"] * 9 * d["height"] * d["width"],
        activation_bytes=lambda d: 4 * d["height"] * d["width"] * (d["in"] * 9 + 2 * d["out"]),  # im2col
        graph=_conv_relu_graph,
        params=lambda d: d["in"] * d["out"] * 9 + 2 * d["out"],  # conv without bias + BatchNorm
    )
)


def _maxpool_graph(d: Dims, _: str, rng: np.random.Generator) -> Graph:
    c, hgt, wid = d["channels"], d["height"], d["width"]
    nodes = [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])]
    return nodes, [value("x", [1, c, hgt, wid])], [value("y", [1, c, hgt // 2, wid // 2])], []


MAXPOOL = register_kernel_kind(
    KernelKind(
        "maxpool",
        ("channels", "height", "width"),
        None,
        macs=lambda d, f: 0,
        activation_bytes=lambda d: 4 * d["channels"] * d["height"] * d["width"] * 5 // 4,
        graph=_maxpool_graph,
    )
)


def _map_head_graph(d: Dims, _: str, rng: np.random.Generator) -> Graph:
    make = helper.make_node
    nodes = [
        make("ReduceMean", ["x", "axes"], ["pooled"], keepdims=0),
        make("Gemm", ["pooled", "w", "b"], ["y"], transB=1),
    ]
    inits = [
        const("axes", np.array([2, 3], np.int64)),
        const("w", weights(rng, d["classes"], d["channels"])),
        const("b", np.zeros(d["classes"], np.float32)),
    ]
    shape = [1, d["channels"], d["height"], d["width"]]
    return nodes, [value("x", shape)], [value("y", [1, d["classes"]])], inits


MAP_HEAD = register_kernel_kind(
    KernelKind(
        "map_head",
        ("channels", "height", "width", "classes"),
        None,
        macs=lambda d, f: d["channels"] * d["classes"],
        activation_bytes=lambda d: (
            4 * (d["channels"] * d["height"] * d["width"] + d["channels"] + d["classes"])
        ),
        graph=_map_head_graph,
        params=lambda d: (d["channels"] + 1) * d["classes"],
    )
)


def width_grid(size: int, step: int = 8) -> list[int]:
    """1, 2, 4, then every ``step`` up to and including ``size``: ONNX Runtime's GEMMs work in SIMD
    tiles of 8 or 16 columns, so latency is a staircase in the width and a coarser grid would step
    over the stairs."""
    return sorted({w for w in (1, 2, 4) if w <= size} | set(range(step, size + 1, step)) | {size})
