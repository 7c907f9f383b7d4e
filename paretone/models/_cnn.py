"""CNN of conv-BatchNorm-ReLU blocks over the log-mel spectrogram.

Each block's output filters are a prunable unit: removing filter j removes conv row j, BatchNorm
entry j and input channel j of the next conv (or of the classifier).
"""

from __future__ import annotations

import torch
from torch import nn

from paretone.audio import LogMel
from paretone.models._base import AudioModel, conv_layer
from paretone.models._config import CNNConfig
from paretone.models._structure import CONV_FILTERS, ModelStructure, PrunableUnit


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

    def structure(self) -> ModelStructure:
        prunable, quantizable = [], []
        for i, block in enumerate(self.blocks):
            consumer = f"blocks.{i + 1}.conv" if i + 1 < len(self.blocks) else "head"
            modules = (f"blocks.{i}.conv", f"blocks.{i}.bn", consumer)
            prunable.append(
                PrunableUnit(f"blocks.{i}.filters", CONV_FILTERS, block.conv.out_channels, modules)
            )
            quantizable.append(conv_layer(f"blocks.{i}.conv", block.conv))
        # The classifier stays float: a few thousand weights, the most sensitive to rounding.
        return ModelStructure(tuple(prunable), tuple(quantizable), self.config.front_end)
