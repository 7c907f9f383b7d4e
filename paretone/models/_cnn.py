"""The ``cnn`` family: conv-BatchNorm-ReLU blocks over the log-mel spectrogram.

Each block's output filters are a prunable unit: removing filter j removes conv row j, BatchNorm
entry j and input channel j of the next conv (or of the classifier).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from paretone.audio import FrontEndConfig, LogMel
from paretone.errors import ConfigError
from paretone.models._base import AudioModel, conv_layer
from paretone.models._family import Elementwise, Family, SizeOption
from paretone.models._kernels import Kernel, LayerKernel, front_end_kernel, width_grid
from paretone.models._registry import register_family
from paretone.models._structure import CONV_FILTERS, ModelStructure, PrunableUnit, positive


@dataclass(frozen=True)
class CNNBlockConfig:
    """conv3x3 -> BatchNorm -> ReLU, then a 2x2 max-pool if ``pool``."""

    out_channels: int
    pool: bool

    def __post_init__(self) -> None:
        positive("cnn block", out_channels=self.out_channels)


@dataclass(frozen=True)
class CNNConfig:
    num_classes: int
    front_end: FrontEndConfig
    blocks: tuple[CNNBlockConfig, ...]
    dropout: float = 0.2

    family = "cnn"

    def __post_init__(self) -> None:
        positive("cnn", num_classes=self.num_classes)
        if not self.blocks:
            raise ConfigError("cnn needs at least one block")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"cnn.dropout must be in [0, 1), got {self.dropout}")

    @classmethod
    def uniform(
        cls,
        *,
        num_classes: int,
        front_end: FrontEndConfig | None = None,
        channels: tuple[int, ...] = (16, 16, 32, 32, 64, 64, 128, 128),
        **kwargs: Any,
    ) -> CNNConfig:
        """Pairs of convs with a max-pool after each pair (VGG style)."""
        blocks = tuple(CNNBlockConfig(c, pool=i % 2 == 1) for i, c in enumerate(channels))
        return cls(num_classes, front_end or FrontEndConfig(), blocks, **kwargs)


class ConvBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, pool: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU()
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.bn(self.conv(x))))


class CNN(AudioModel):
    def __init__(self, config: CNNConfig) -> None:
        super().__init__()
        self.config = config
        self.front_end = LogMel(config.front_end)
        channels = [1, *(b.out_channels for b in config.blocks)]
        self.blocks = nn.ModuleList(
            ConvBlock(cin, b.out_channels, b.pool)
            for cin, b in zip(channels[:-1], config.blocks, strict=True)
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(channels[-1], config.num_classes)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        x = features.unsqueeze(1)
        for block in self.blocks:
            x = block(x)
        return self.head(self.dropout(x.mean(dim=(2, 3))))


def conv_map_kernels(config: Any, conv_kind: str = "conv_relu", in_channels: int = 1) -> list[LayerKernel]:
    """Kernels of a VGG-style stack of ``blocks`` (conv of ``conv_kind``, optional 2x2 max-pool)
    over the log-mel map, and a pooled head; block ``i``'s conv is the layer ``blocks.{i}.conv``."""
    fe = config.front_end
    height, width, channels = fe.n_mels, fe.frames, in_channels
    out = [LayerKernel(front_end_kernel(fe))]
    for i, b in enumerate(config.blocks):
        shape = {"in": channels, "out": b.out_channels}
        out.append(LayerKernel(Kernel.of(conv_kind, height=height, width=width, **shape), f"blocks.{i}.conv"))
        channels = b.out_channels
        if b.pool:
            out.append(LayerKernel(Kernel.of("maxpool", channels=channels, height=height, width=width)))
            height, width = height // 2, width // 2
    head = {"channels": channels, "height": height, "width": width, "classes": config.num_classes}
    out.append(LayerKernel(Kernel.of("map_head", **head)))
    return out


def conv_map_sweep(
    config: Any, conv_kind: str = "conv_relu", in_channels: int = 1, unit: int = 1
) -> set[Kernel]:
    """Every conv, pool and head shape filter pruning can leave of ``conv_map_kernels``; pruning
    removes ``unit`` real channels at a time (4 for quaternion filters)."""
    kernels = {k.kernel for k in conv_map_kernels(config, conv_kind, in_channels)}
    height, width, previous = config.front_end.n_mels, config.front_end.frames, [in_channels]
    for block in config.blocks:
        size = block.out_channels // unit
        outs = [unit * c for c in width_grid(size, step=max(8, size // 4))]
        for c_in in previous:
            for c_out in outs:
                shape = {"in": c_in, "out": c_out}
                kernels.add(Kernel.of(conv_kind, height=height, width=width, **shape))
        if block.pool:
            for c in outs:
                kernels.add(Kernel.of("maxpool", channels=c, height=height, width=width))
            height, width = height // 2, width // 2
        previous = outs
    for c in previous:
        kernels.add(Kernel.of("map_head", channels=c, height=height, width=width, classes=config.num_classes))
    return kernels


class CNNFamily(Family):
    name = "cnn"
    config_type = CNNConfig
    size_options = (
        SizeOption(
            "channels",
            tuple,
            (16, 16, 32, 32, 64, 64, 128, 128),
            "CNN output channels per conv block, comma-separated (max-pool after every second).",
        ),
    )
    small: ClassVar[dict[str, Any]] = {"channels": (8, 8, 16, 16)}

    def teacher_config(self, *, num_classes: int, front_end: FrontEndConfig, **sizes: Any) -> CNNConfig:
        return CNNConfig.uniform(num_classes=num_classes, front_end=front_end, **sizes)

    def build(self, config: CNNConfig) -> CNN:
        return CNN(config)

    def structure(self, config: CNNConfig) -> ModelStructure:
        prunable, quantizable = [], []
        channels = [1, *(b.out_channels for b in config.blocks)]
        for i, block in enumerate(config.blocks):
            consumer = f"blocks.{i + 1}.conv" if i + 1 < len(config.blocks) else "head"
            modules = (f"blocks.{i}.conv", f"blocks.{i}.bn", consumer)
            prunable.append(PrunableUnit(f"blocks.{i}.filters", CONV_FILTERS, block.out_channels, modules))
            quantizable.append(conv_layer(f"blocks.{i}.conv", channels[i], block.out_channels, (3, 3)))
        # The classifier stays float: a few thousand weights, the most sensitive to rounding.
        return ModelStructure(tuple(prunable), tuple(quantizable), config.front_end)

    def student_config(
        self, teacher: CNNConfig, *, kept: Mapping[str, int], front_end: FrontEndConfig
    ) -> CNNConfig:
        blocks = tuple(
            CNNBlockConfig(kept.get(f"blocks.{i}.filters", b.out_channels), b.pool)
            for i, b in enumerate(teacher.blocks)
        )
        return dataclasses.replace(teacher, front_end=front_end, blocks=blocks)

    def unit_scores(self, model: AudioModel, value: Elementwise) -> dict[str, torch.Tensor]:
        scores, count = {}, len(model.config.blocks)
        for i in range(count):
            b = f"blocks.{i}"
            own = value(f"{b}.conv.weight").sum((1, 2, 3)) + value(f"{b}.bn.weight") + value(f"{b}.bn.bias")
            consumer = (
                value(f"blocks.{i + 1}.conv.weight").sum((0, 2, 3))
                if i + 1 < count
                else value("head.weight").sum(0)
            )
            scores[f"{b}.filters"] = own + consumer
        return scores

    def slice(
        self, teacher: CNNConfig, student: CNNConfig, keep: Mapping[str, torch.Tensor], state: dict
    ) -> None:
        for i in range(len(student.blocks)):
            b, kept = f"blocks.{i}", keep[f"blocks.{i}.filters"]
            state[f"{b}.conv.weight"] = state[f"{b}.conv.weight"][kept]
            for stat in ("weight", "bias", "running_mean", "running_var"):
                state[f"{b}.bn.{stat}"] = state[f"{b}.bn.{stat}"][kept]
            consumer = f"blocks.{i + 1}.conv.weight" if i + 1 < len(student.blocks) else "head.weight"
            state[consumer] = state[consumer][:, kept]

    def filter_banks(self, model: AudioModel) -> dict[str, torch.Tensor]:
        """Each conv's weights as (filters, 1 component, in, 3, 3)."""
        return {f"blocks.{i}.filters": block.conv.weight.unsqueeze(1) for i, block in enumerate(model.blocks)}

    def kernels(self, config: CNNConfig) -> list[LayerKernel]:
        return conv_map_kernels(config)

    def calibration_kernels(self, teacher: CNNConfig) -> set[Kernel]:
        return conv_map_sweep(teacher)


CNN_FAMILY = register_family(CNNFamily())
