"""Model configurations: plain frozen dataclasses that round-trip through JSON.

Architecture is described per block, so a structurally pruned student (fewer heads, narrower
channels in one layer only) is just another configuration of the same model class.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from paretone.audio import FrontEndConfig
from paretone.errors import ConfigError


def _positive(owner: str, **values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ConfigError(f"{owner}.{name} must be positive, got {value}")


@dataclass(frozen=True)
class ASTBlockConfig:
    """One transformer block. ``attn_scale`` stays the teacher's when q/k channels are pruned."""

    num_heads: int
    qk_head_dim: int
    v_head_dim: int
    ffn_dim: int
    attn_scale: float

    def __post_init__(self) -> None:
        _positive("ast block", **{f.name: getattr(self, f.name) for f in fields(self)})


@dataclass(frozen=True)
class ASTConfig:
    """Audio Spectrogram Transformer: patch embedding, pre-norm blocks, mean-pooled head.

    The default patch spans every mel band and two frames: on FSDD such full-band tokens learned
    several times faster than 16x4 patches (93% vs 44% test after five epochs, half the tokens).
    """

    num_classes: int
    front_end: FrontEndConfig
    dim: int
    blocks: tuple[ASTBlockConfig, ...]
    patch_mels: int = 64
    patch_frames: int = 2
    dropout: float = 0.1

    family = "ast"

    def __post_init__(self) -> None:
        _positive(
            "ast",
            num_classes=self.num_classes,
            dim=self.dim,
            patch_mels=self.patch_mels,
            patch_frames=self.patch_frames,
        )
        if not self.blocks:
            raise ConfigError("ast needs at least one block")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"ast.dropout must be in [0, 1), got {self.dropout}")
        if self.patch_mels > self.front_end.n_mels or self.patch_frames > self.front_end.frames:
            raise ConfigError("ast patch is larger than the spectrogram; reduce patch_mels/frames")

    @property
    def num_patches(self) -> int:
        return (self.front_end.n_mels // self.patch_mels) * (self.front_end.frames // self.patch_frames)

    @classmethod
    def uniform(
        cls,
        *,
        num_classes: int,
        front_end: FrontEndConfig | None = None,
        dim: int = 192,
        depth: int = 4,
        heads: int = 4,
        mlp_ratio: float = 2.0,
        **kwargs: Any,
    ) -> ASTConfig:
        """A teacher-style AST with identical blocks."""
        if dim % heads:
            raise ConfigError(f"ast dim {dim} is not divisible by heads {heads}")
        head_dim = dim // heads
        block = ASTBlockConfig(heads, head_dim, head_dim, int(dim * mlp_ratio), 1 / math.sqrt(head_dim))
        return cls(num_classes, front_end or FrontEndConfig(), dim, (block,) * depth, **kwargs)


@dataclass(frozen=True)
class CNNBlockConfig:
    """conv3x3 -> BatchNorm -> ReLU, then a 2x2 max-pool if ``pool``."""

    out_channels: int
    pool: bool

    def __post_init__(self) -> None:
        _positive("cnn block", out_channels=self.out_channels)


@dataclass(frozen=True)
class CNNConfig:
    num_classes: int
    front_end: FrontEndConfig
    blocks: tuple[CNNBlockConfig, ...]
    dropout: float = 0.2

    family = "cnn"

    def __post_init__(self) -> None:
        _positive("cnn", num_classes=self.num_classes)
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


ModelConfig = ASTConfig | CNNConfig
FAMILIES = ("ast", "cnn")


def config_to_dict(config: ModelConfig) -> dict[str, Any]:
    return {"family": config.family, **asdict(config)}


def config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Rebuild a config from ``config_to_dict`` output; raises ConfigError on anything else."""
    try:
        data = dict(data)
        family = data.pop("family")
        front_end = FrontEndConfig(**data.pop("front_end"))
        if family == "ast":
            blocks = tuple(ASTBlockConfig(**b) for b in data.pop("blocks"))
            return ASTConfig(front_end=front_end, blocks=blocks, **data)
        if family == "cnn":
            blocks = tuple(CNNBlockConfig(**b) for b in data.pop("blocks"))
            return CNNConfig(front_end=front_end, blocks=blocks, **data)
        raise ConfigError(f"unknown model family {family!r}: use one of {', '.join(FAMILIES)}")
    except (KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"invalid model config ({exc}); re-create it with paretone") from None
