"""The ``qcnn`` family: a quaternion CNN (Parcollet et al.; pruned as in Singh, Abrol and Plumbley).

Channels come in groups of four, the components (r, i, j, k) of quaternions; a quaternion
convolution stores one weight tensor per component, (Q_out, Q_in, 3, 3) each, and mixes them
through the Hamilton product, so it has a quarter of the parameters of a real convolution of the
same width. Real channel ``c * Q + q`` is component ``c`` of quaternion ``q``. The quaternion input
is built in the model from the log-mel spectrogram: the spectrogram and its first three deltas
(``input = "deltas"``) or a learnt 3x3 convolution to four components (``"learned"``).

The prunable unit of a block is its quaternion filters: removing one removes four real output
channels (one per component), their BatchNorm entries, and the next layer's matching inputs.
Exported float, a quaternion convolution is an ordinary ``Conv`` whose weight the graph builds
from the four stored components when the session loads (the file holds a quarter of the dense
weight; the memory model counts the dense one); quantized formats store the rounded dense weight.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from onnx import helper
from torch import nn

from paretone.audio import FrontEndConfig, LogMel
from paretone.errors import ConfigError
from paretone.models._base import AudioModel, DenseWeightConv, conv_layer
from paretone.models._cnn import conv_map_kernels, conv_map_sweep
from paretone.models._family import Elementwise, Family, SizeOption
from paretone.models._kernels import (
    CONV_RELU,
    LAYER_NODE,
    Dims,
    Graph,
    Kernel,
    KernelKind,
    LayerKernel,
    const,
    register_kernel_kind,
    value,
    weights,
)
from paretone.models._registry import register_family
from paretone.models._structure import ModelStructure, PrunableUnit, positive

QUATERNION_FILTERS = "quaternion_filters"  # four real channels at once: one per component
INPUTS = ("deltas", "learned")
DELTA_WIDTH = 2  # deltas over 2 * 2 + 1 frames, as torchaudio.functional.compute_deltas(win_length=5)


@dataclass(frozen=True)
class QCNNBlockConfig:
    """Quaternion conv3x3 -> BatchNorm -> ReLU, then a 2x2 max-pool if ``pool``."""

    filters: int  # quaternion filters: 4 real output channels each
    pool: bool

    def __post_init__(self) -> None:
        positive("qcnn block", filters=self.filters)

    @property
    def out_channels(self) -> int:
        return 4 * self.filters


@dataclass(frozen=True)
class QCNNConfig:
    num_classes: int
    front_end: FrontEndConfig
    blocks: tuple[QCNNBlockConfig, ...]
    input: str = "deltas"
    dropout: float = 0.2

    family = "qcnn"

    def __post_init__(self) -> None:
        positive("qcnn", num_classes=self.num_classes)
        if not self.blocks:
            raise ConfigError("qcnn needs at least one block")
        if self.input not in INPUTS:
            raise ConfigError(f"qcnn.input {self.input!r}: use one of {', '.join(INPUTS)}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"qcnn.dropout must be in [0, 1), got {self.dropout}")


def hamilton(r: torch.Tensor, i: torch.Tensor, j: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The real weight of a quaternion convolution: (4 Q_out, 4 Q_in, kh, kw) from four components.

    Output component rows (r, i, j, k) are the Hamilton product W x for input components (r, i, j, k).
    """
    return torch.cat(
        [
            torch.cat([r, -i, -j, -k], dim=1),
            torch.cat([i, r, -k, j], dim=1),
            torch.cat([j, k, r, -i], dim=1),
            torch.cat([k, -j, i, r], dim=1),
        ],
        dim=0,
    )


class QuaternionConv2d(DenseWeightConv):
    COMPONENTS: ClassVar[tuple[str, ...]] = ("r", "i", "j", "k")

    def __init__(self, in_filters: int, out_filters: int) -> None:
        super().__init__()
        self.in_channels, self.out_channels = 4 * in_filters, 4 * out_filters
        self.kernel_size, self.padding = (3, 3), (1, 1)
        std = (2.0 / (4 * in_filters * 9)) ** 0.5  # He initialisation over the dense fan-in
        for name in self.COMPONENTS:
            self.register_parameter(name, nn.Parameter(torch.randn(out_filters, in_filters, 3, 3) * std))

    def dense_weight(self) -> torch.Tensor:
        return hamilton(self.r, self.i, self.j, self.k)


class QuaternionInput(nn.Module):
    """(batch, mels, frames) log-mels -> (batch, 4, mels, frames): the four input components."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode
        if mode == "learned":
            self.conv = nn.Conv2d(1, 4, kernel_size=3, padding=1)
        else:
            taps = torch.arange(-DELTA_WIDTH, DELTA_WIDTH + 1, dtype=torch.float32)
            kernel = (taps / (taps**2).sum()).reshape(1, 1, 1, -1)  # sum_n n (x[t+n] - x[t-n]) / 2 sum n^2
            self.register_buffer("delta_kernel", kernel, persistent=False)

    def _delta(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, (DELTA_WIDTH, DELTA_WIDTH, 0, 0), mode="replicate")
        return F.conv2d(padded, self.delta_kernel)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = features.unsqueeze(1)
        if self.mode == "learned":
            return self.conv(x)
        d1 = self._delta(x)
        d2 = self._delta(d1)
        return torch.cat([x, d1, d2, self._delta(d2)], dim=1)

    def count_macs(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
        cells = inputs[0].numel()
        return cells * 4 * 9 if self.mode == "learned" else 3 * cells * (2 * DELTA_WIDTH + 1)


class QBlock(nn.Module):
    def __init__(self, in_filters: int, out_filters: int, pool: bool) -> None:
        super().__init__()
        self.conv = QuaternionConv2d(in_filters, out_filters)
        self.bn = nn.BatchNorm2d(4 * out_filters)
        self.act = nn.ReLU()
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.bn(self.conv(x))))


class QCNN(AudioModel):
    def __init__(self, config: QCNNConfig) -> None:
        super().__init__()
        self.config = config
        self.front_end = LogMel(config.front_end)
        self.quaternion_input = QuaternionInput(config.input)
        filters = [1, *(b.filters for b in config.blocks)]
        self.blocks = nn.ModuleList(
            QBlock(f_in, b.filters, b.pool) for f_in, b in zip(filters[:-1], config.blocks, strict=True)
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(4 * filters[-1], config.num_classes)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        x = self.quaternion_input(features)
        for block in self.blocks:
            x = block(x)
        return self.head(self.dropout(x.mean(dim=(2, 3))))


# -- kernels of their own --------------------------------------------------------------------------


def _qconv_graph(d: Dims, fmt: str, rng: np.random.Generator) -> Graph:
    """Float: four stored components and the Hamilton block built from them (folded at load);
    quantized formats store the rounded dense weight, the graph of an ordinary conv."""
    if fmt != "float":
        return CONV_RELU.graph(d, fmt, rng)  # type: ignore[return-value]
    c_in, c_out, hgt, wid = d["in"], d["out"], d["height"], d["width"]
    make = helper.make_node
    names = QuaternionConv2d.COMPONENTS
    inits = [const(n, weights(rng, c_out // 4, c_in // 4, 3, 3)) for n in names]
    nodes = [make("Neg", [n], [f"-{n}"]) for n in names[1:]]
    rows = (("r", "-i", "-j", "-k"), ("i", "r", "-k", "j"), ("j", "k", "r", "-i"), ("k", "-j", "i", "r"))
    for index, row in enumerate(rows):
        nodes.append(make("Concat", list(row), [f"row{index}"], axis=1))
    nodes += [
        make("Concat", [f"row{index}" for index in range(4)], ["w"], axis=0),
        make("Conv", ["x", "w"], ["c"], name=LAYER_NODE, kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        make("Relu", ["c"], ["y"]),
    ]
    return nodes, [value("x", [1, c_in, hgt, wid])], [value("y", [1, c_out, hgt, wid])], inits


register_kernel_kind(
    KernelKind(
        "qconv_relu",
        ("in", "out", "height", "width"),
        "conv2d",
        macs=CONV_RELU.macs,
        activation_bytes=CONV_RELU.activation_bytes,
        graph=_qconv_graph,
        params=lambda d: d["in"] * d["out"] * 9 // 4 + 2 * d["out"],  # components + BatchNorm
        computed_weight_bytes=lambda d, f: 4 * d["in"] * d["out"] * 9 if f == "float" else 0,
    )
)


def _quaternion_input_graph(d: Dims, fmt: str, rng: np.random.Generator) -> Graph:
    mels, frames = d["mels"], d["frames"]
    make = helper.make_node
    nodes = [make("Unsqueeze", ["x", "axis1"], ["x4"])]
    inits = [const("axis1", np.array([1], np.int64))]
    if d["learned"]:
        inits += [const("w", weights(rng, 4, 1, 3, 3)), const("b", np.zeros(4, np.float32))]
        nodes.append(make("Conv", ["x4", "w", "b"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
    else:
        taps = np.arange(-DELTA_WIDTH, DELTA_WIDTH + 1, dtype=np.float32)
        inits += [
            const("taps", (taps / (taps**2).sum()).reshape(1, 1, 1, -1)),
            const("pads", np.array([0, 0, 0, DELTA_WIDTH, 0, 0, 0, DELTA_WIDTH], np.int64)),
        ]
        previous = "x4"
        for order in (1, 2, 3):
            nodes += [
                make("Pad", [previous, "pads"], [f"p{order}"], mode="edge"),
                make("Conv", [f"p{order}", "taps"], [f"d{order}"]),
            ]
            previous = f"d{order}"
        nodes.append(make("Concat", ["x4", "d1", "d2", "d3"], ["y"], axis=1))
    return nodes, [value("x", [1, mels, frames])], [value("y", [1, 4, mels, frames])], inits


register_kernel_kind(
    KernelKind(
        "quaternion_input",
        ("mels", "frames", "learned"),
        None,
        macs=lambda d, f: d["mels"] * d["frames"] * (36 if d["learned"] else 3 * (2 * DELTA_WIDTH + 1)),
        activation_bytes=lambda d: 4 * d["mels"] * d["frames"] * (5 + 4 * (not d["learned"])),
        graph=_quaternion_input_graph,
        params=lambda d: 40 if d["learned"] else 0,
    )
)


# -- the family ----------------------------------------------------------------------------------


def _components(module: str) -> list[str]:
    return [f"{module}.{c}" for c in QuaternionConv2d.COMPONENTS]


def _channels(kept: torch.Tensor, filters: int) -> torch.Tensor:
    """The real channels of kept quaternion filters: component c of filter q is c * filters + q."""
    return torch.cat([c * filters + kept for c in range(4)])


class QCNNFamily(Family):
    name = "qcnn"
    config_type = QCNNConfig
    size_options = (
        SizeOption(
            "channels",
            tuple,
            (16, 16, 32, 32, 64, 64, 128, 128),
            "Output channels per conv block, comma-separated (max-pool after every second; multiples of 4).",
        ),
        SizeOption("quaternion_input", str, "deltas", "qcnn: the quaternion input, deltas or learned."),
    )
    small: ClassVar[dict[str, Any]] = {"channels": (8, 8, 16, 16)}

    def teacher_config(self, *, num_classes: int, front_end: FrontEndConfig, **sizes: Any) -> QCNNConfig:
        channels = tuple(sizes.pop("channels", self.size_options[0].default))
        mode = sizes.pop("quaternion_input", "deltas")
        if sizes:
            raise ConfigError(f"qcnn has no size {', '.join(sorted(sizes))}")
        if not channels or any(c % 4 or c < 4 for c in channels):
            raise ConfigError(
                f"qcnn --channels {channels}: each must be a positive multiple of 4 (a quaternion)"
            )
        blocks = tuple(QCNNBlockConfig(c // 4, pool=i % 2 == 1) for i, c in enumerate(channels))
        return QCNNConfig(num_classes, front_end, blocks, input=mode)

    def build(self, config: QCNNConfig) -> QCNN:
        return QCNN(config)

    def structure(self, config: QCNNConfig) -> ModelStructure:
        prunable, quantizable = [], []
        filters = [1, *(b.filters for b in config.blocks)]
        for i, block in enumerate(config.blocks):
            consumer = f"blocks.{i + 1}.conv" if i + 1 < len(config.blocks) else "head"
            modules = (f"blocks.{i}.conv", f"blocks.{i}.bn", consumer)
            prunable.append(PrunableUnit(f"blocks.{i}.filters", QUATERNION_FILTERS, block.filters, modules))
            layer = conv_layer(f"blocks.{i}.conv", 4 * filters[i], 4 * block.filters, (3, 3))
            quantizable.append(dataclasses.replace(layer, params=layer.params // 4))  # stored components
        return ModelStructure(tuple(prunable), tuple(quantizable), config.front_end)

    def student_config(
        self, teacher: QCNNConfig, *, kept: Mapping[str, int], front_end: FrontEndConfig
    ) -> QCNNConfig:
        blocks = tuple(
            QCNNBlockConfig(kept.get(f"blocks.{i}.filters", b.filters), b.pool)
            for i, b in enumerate(teacher.blocks)
        )
        return dataclasses.replace(teacher, front_end=front_end, blocks=blocks)

    def unit_scores(self, model: AudioModel, value: Elementwise) -> dict[str, torch.Tensor]:
        scores, count = {}, len(model.config.blocks)
        for i, block in enumerate(model.config.blocks):
            b, q = f"blocks.{i}", block.filters
            own = sum(value(key).sum((1, 2, 3)) for key in _components(f"{b}.conv"))
            own = (
                own
                + value(f"{b}.bn.weight").reshape(4, q).sum(0)
                + value(f"{b}.bn.bias").reshape(4, q).sum(0)
            )
            if i + 1 < count:
                consumer = sum(value(key).sum((0, 2, 3)) for key in _components(f"blocks.{i + 1}.conv"))
            else:
                consumer = value("head.weight").reshape(-1, 4, q).sum((0, 1))
            scores[f"{b}.filters"] = own + consumer
        return scores

    def slice(
        self, teacher: QCNNConfig, student: QCNNConfig, keep: Mapping[str, torch.Tensor], state: dict
    ) -> None:
        for i, old in enumerate(teacher.blocks):
            b, kept = f"blocks.{i}", keep[f"blocks.{i}.filters"]
            for key in _components(f"{b}.conv"):
                state[key] = state[key][kept]
            channels = _channels(kept, old.filters)
            for stat in ("weight", "bias", "running_mean", "running_var"):
                state[f"{b}.bn.{stat}"] = state[f"{b}.bn.{stat}"][channels]
            if i + 1 < len(teacher.blocks):
                for key in _components(f"blocks.{i + 1}.conv"):
                    state[key] = state[key][:, kept]
            else:
                state["head.weight"] = state["head.weight"][:, channels]

    def filter_banks(self, model: AudioModel) -> dict[str, torch.Tensor]:
        """Each block's quaternion filters as (filters, 4 components, in filters, 3, 3)."""
        return {
            f"blocks.{i}.filters": torch.stack(
                [getattr(block.conv, c) for c in QuaternionConv2d.COMPONENTS], 1
            )
            for i, block in enumerate(model.blocks)
        }

    def kernels(self, config: QCNNConfig) -> list[LayerKernel]:
        fe = config.front_end
        quaternion = Kernel.of(
            "quaternion_input", mels=fe.n_mels, frames=fe.frames, learned=int(config.input == "learned")
        )
        out = conv_map_kernels(config, conv_kind="qconv_relu", in_channels=4)
        return [out[0], LayerKernel(quaternion), *out[1:]]

    def calibration_kernels(self, teacher: QCNNConfig) -> set[Kernel]:
        kernels = {k.kernel for k in self.kernels(teacher)}
        return kernels | conv_map_sweep(teacher, conv_kind="qconv_relu", in_channels=4, unit=4)


QCNN_FAMILY = register_family(QCNNFamily())
