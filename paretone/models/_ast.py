"""Audio Spectrogram Transformer with separately prunable query, key, value and output projections.

Heads, query/key channels per head and value/output channels per head are independent sizes, so
structured pruning (removing whole heads, or channels inside every head) yields a smaller model of
this same class.
"""

from __future__ import annotations

import torch
from torch import nn

from paretone.audio import LogMel
from paretone.models._base import AudioModel, MatMul, conv_layer, linear_layer
from paretone.models._config import ASTBlockConfig, ASTConfig
from paretone.models._structure import (
    ATTENTION_HEADS,
    FFN_CHANNELS,
    QK_CHANNELS,
    V_CHANNELS,
    ModelStructure,
    PrunableUnit,
)


class Attention(nn.Module):
    def __init__(self, dim: int, block: ASTBlockConfig, dropout: float) -> None:
        super().__init__()
        self.num_heads, self.qk_head_dim, self.v_head_dim = (
            block.num_heads,
            block.qk_head_dim,
            block.v_head_dim,
        )
        self.scale = block.attn_scale
        self.q = nn.Linear(dim, block.num_heads * block.qk_head_dim)
        self.k = nn.Linear(dim, block.num_heads * block.qk_head_dim)
        self.v = nn.Linear(dim, block.num_heads * block.v_head_dim)
        self.o = nn.Linear(block.num_heads * block.v_head_dim, dim)
        self.scores = MatMul()
        self.context = MatMul()
        self.dropout = nn.Dropout(dropout)

    def _heads(self, x: torch.Tensor, head_dim: int) -> torch.Tensor:
        return x.reshape(x.shape[0], x.shape[1], self.num_heads, head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self._heads(self.q(x), self.qk_head_dim)
        k = self._heads(self.k(x), self.qk_head_dim)
        v = self._heads(self.v(x), self.v_head_dim)
        weights = torch.softmax(self.scores(q, k.transpose(-2, -1)) * self.scale, dim=-1)
        context = self.context(self.dropout(weights), v)
        context = context.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1)
        return self.o(context)


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(self.act(self.fc1(x))))


class Block(nn.Module):
    def __init__(self, dim: int, block: ASTBlockConfig, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, block, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, block.ffn_dim, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.norm1(x)))
        return x + self.dropout(self.ffn(self.norm2(x)))


class AST(AudioModel):
    def __init__(self, config: ASTConfig) -> None:
        super().__init__()
        self.config = config
        self.front_end = LogMel(config.front_end)
        patch = (config.patch_mels, config.patch_frames)
        self.patch_embed = nn.Conv2d(1, config.dim, kernel_size=patch, stride=patch)
        self.pos_embed = nn.Parameter(torch.zeros(1, config.num_patches, config.dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.ModuleList(Block(config.dim, b, config.dropout) for b in config.blocks)
        self.norm = nn.LayerNorm(config.dim)
        self.head = nn.Linear(config.dim, config.num_classes)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        tokens = self.patch_embed(features.unsqueeze(1)).flatten(2).transpose(1, 2)
        x = tokens + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x).mean(dim=1))

    def structure(self) -> ModelStructure:
        prunable, quantizable = [], [conv_layer("patch_embed", self.patch_embed)]
        for i, (block, cfg) in enumerate(zip(self.blocks, self.config.blocks, strict=True)):
            attn, p = f"blocks.{i}.attn", f"blocks.{i}"
            qkvo = tuple(f"{attn}.{n}" for n in "qkvo")
            prunable += [
                PrunableUnit(f"{attn}.heads", ATTENTION_HEADS, cfg.num_heads, qkvo),
                PrunableUnit(f"{attn}.qk_channels", QK_CHANNELS, cfg.qk_head_dim, qkvo[:2]),
                PrunableUnit(f"{attn}.v_channels", V_CHANNELS, cfg.v_head_dim, qkvo[2:]),
                PrunableUnit(f"{p}.ffn.hidden", FFN_CHANNELS, cfg.ffn_dim, (f"{p}.ffn.fc1", f"{p}.ffn.fc2")),
            ]
            quantizable += [linear_layer(n, getattr(block.attn, n[-1])) for n in qkvo]
            quantizable += [
                linear_layer(f"{p}.ffn.fc1", block.ffn.fc1),
                linear_layer(f"{p}.ffn.fc2", block.ffn.fc2),
            ]
        # The classifier stays float: a few thousand weights, the most sensitive to rounding.
        return ModelStructure(tuple(prunable), tuple(quantizable), self.config.front_end)
