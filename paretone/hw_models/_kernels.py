"""The kernels a model runs, as the unit of latency and memory prediction.

A kernel is one piece of the deployed graph with its shape and runtime format: a linear layer in
w8a8, the attention of a block with 3 heads, the log-mel front-end. It is chosen so that ONNX
Runtime's fusions stay inside one kernel (the bias and GELU of ``fc1`` fuse into ``BiasGelu``, so
``linear_gelu`` is one kernel), and so that the kernels of a model add up to all of its arithmetic.
Kernels are listed from a model configuration without exporting anything, which is what lets the
search predict a candidate's cost in microseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from paretone.compress import Recipe, format_for, student_config
from paretone.errors import ConfigError
from paretone.models import ASTConfig, CNNConfig, ModelConfig

# kind -> the shape fields that define it (also the features its latency regressor sees)
KERNEL_KINDS: dict[str, tuple[str, ...]] = {
    "frontend": ("samples", "n_fft", "hop", "n_mels", "utterance_norm"),
    "patch_embed": ("mels", "frames", "patch_mels", "patch_frames", "dim"),
    "add_layernorm": ("tokens", "dim"),
    "linear": ("tokens", "in", "out"),
    "linear_gelu": ("tokens", "in", "out"),
    "attention": ("tokens", "heads", "qk_dim", "v_dim"),
    "token_head": ("tokens", "dim", "classes"),
    "conv_relu": ("in", "out", "height", "width"),
    "maxpool": ("channels", "height", "width"),
    "map_head": ("channels", "height", "width", "classes"),
}
# kinds whose format follows the recipe; the others always run in float
QUANTIZABLE_KINDS = {
    "linear": "linear",
    "linear_gelu": "linear",
    "patch_embed": "conv2d",
    "conv_relu": "conv2d",
}


@dataclass(frozen=True)
class Kernel:
    kind: str
    format: str  # a RuntimeFormat name ("float", "w8a8", "w4", ...); the front-end's implementation
    shape: tuple[tuple[str, int], ...]

    def __post_init__(self) -> None:
        fields = KERNEL_KINDS.get(self.kind)
        if fields is None:
            raise ConfigError(f"unknown kernel kind {self.kind!r}; known: {', '.join(KERNEL_KINDS)}")
        if tuple(name for name, _ in self.shape) != fields:
            raise ConfigError(f"kernel {self.kind} needs shape fields {fields}, got {self.shape}")

    @classmethod
    def of(cls, kind: str, fmt: str = "float", **shape: int) -> Kernel:
        return cls(kind, fmt, tuple((name, int(shape[name])) for name in KERNEL_KINDS.get(kind, shape)))

    @property
    def dims(self) -> dict[str, int]:
        return dict(self.shape)

    @property
    def key(self) -> str:
        """Unique, readable name, e.g. ``linear/w8a8/tokens=50,in=192,out=64``."""
        return f"{self.kind}/{self.format}/" + ",".join(f"{n}={v}" for n, v in self.shape)

    @property
    def quantized(self) -> bool:
        return self.kind in QUANTIZABLE_KINDS and self.format != "float"

    @property
    def macs(self) -> int:
        """Multiply-accumulates in its Conv/MatMul/Gemm nodes (the STFT op is not counted)."""
        d = self.dims
        if self.kind == "frontend":
            frames, freqs = d["samples"] // d["hop"] + 1, d["n_fft"] // 2 + 1
            dft = frames * 2 * freqs * d["n_fft"] if self.format == "dft" else 0
            return frames * freqs * d["n_mels"] + dft
        if self.kind == "patch_embed":
            tokens = (d["mels"] // d["patch_mels"]) * (d["frames"] // d["patch_frames"])
            return tokens * d["dim"] * d["patch_mels"] * d["patch_frames"]
        if self.kind in ("linear", "linear_gelu"):
            return d["tokens"] * d["in"] * d["out"]
        if self.kind == "attention":
            return d["tokens"] ** 2 * d["heads"] * (d["qk_dim"] + d["v_dim"])
        if self.kind == "token_head":
            return d["dim"] * d["classes"]
        if self.kind == "conv_relu":
            return d["in"] * d["out"] * 9 * d["height"] * d["width"]
        if self.kind == "map_head":
            return d["channels"] * d["classes"]
        return 0

    @property
    def params(self) -> int:
        """Trainable parameters of the PyTorch layers it stands for (BatchNorm folded into conv)."""
        d = self.dims
        if self.kind == "patch_embed":
            tokens = (d["mels"] // d["patch_mels"]) * (d["frames"] // d["patch_frames"])
            return d["dim"] * (d["patch_mels"] * d["patch_frames"] + 1 + tokens)  # + position embedding
        if self.kind in ("linear", "linear_gelu"):
            return (d["in"] + 1) * d["out"]
        if self.kind == "add_layernorm":
            return 2 * d["dim"]
        if self.kind == "token_head":
            return (d["dim"] + 1) * d["classes"]
        if self.kind == "conv_relu":
            return d["in"] * d["out"] * 9 + 2 * d["out"]  # conv without bias + BatchNorm scale, shift
        if self.kind == "map_head":
            return (d["channels"] + 1) * d["classes"]
        return 0

    @property
    def computed_weight_bytes(self) -> int:
        """fp32 bytes of weights the graph computes when the session loads instead of storing them
        (the "dft" front-end's cos/sin kernel); ONNX Runtime's constant folding holds them and their
        intermediates in memory, so they count towards peak memory but not file bytes."""
        d = self.dims
        if self.kind == "frontend" and self.format == "dft":
            return 4 * 2 * (d["n_fft"] // 2 + 1) * d["n_fft"]
        return 0

    @property
    def activation_bytes(self) -> int:
        """fp32 bytes of the tensors live while it runs (inputs, intermediates, outputs)."""
        d = self.dims
        if self.kind == "frontend":
            frames = d["samples"] // d["hop"] + 1
            return 4 * (d["samples"] + frames * ((d["n_fft"] // 2 + 1) * 2 + d["n_mels"]))
        if self.kind == "patch_embed":
            tokens = (d["mels"] // d["patch_mels"]) * (d["frames"] // d["patch_frames"])
            return 4 * (d["mels"] * d["frames"] + 2 * tokens * d["dim"])
        if self.kind in ("linear", "linear_gelu"):
            return 4 * d["tokens"] * (d["in"] + 2 * d["out"])
        if self.kind == "attention":
            t, h = d["tokens"], d["heads"]
            return 4 * (2 * t * h * (2 * d["qk_dim"] + d["v_dim"]) + 2 * t * t * h)
        if self.kind == "add_layernorm":
            return 4 * 4 * d["tokens"] * d["dim"]
        if self.kind == "token_head":
            return 4 * (d["tokens"] * d["dim"] + d["dim"] + d["classes"])
        if self.kind == "conv_relu":
            return 4 * d["height"] * d["width"] * (d["in"] * 9 + 2 * d["out"])  # im2col buffer
        if self.kind == "maxpool":
            return 4 * d["channels"] * d["height"] * d["width"] * 5 // 4
        return 4 * (d["channels"] * d["height"] * d["width"] + d["channels"] + d["classes"])  # map_head

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "format": self.format, "shape": self.dims}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Kernel:
        try:
            return cls.of(data["kind"], data["format"], **data["shape"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"malformed kernel record {dict(data)!r}: {exc}") from None


def _frontend(config: ModelConfig) -> Kernel:
    fe = config.front_end
    return Kernel.of(
        "frontend",
        fe.implementation,
        samples=fe.clip_samples,
        n_fft=fe.n_fft,
        hop=fe.hop_length,
        n_mels=fe.n_mels,
        utterance_norm=int(fe.normalization == "utterance"),
    )


def model_kernels(config: ModelConfig, formats: Mapping[str, str] | None = None) -> list[Kernel]:
    """Every kernel of the model ``config`` describes; ``formats``: layer name -> format name."""
    formats = dict(formats or {})
    fmt = formats.get
    kernels = [_frontend(config)]
    if isinstance(config, ASTConfig):
        t, d = config.num_patches, config.dim
        fe = config.front_end
        kernels.append(
            Kernel.of(
                "patch_embed",
                fmt("patch_embed", "float"),
                mels=fe.n_mels,
                frames=fe.frames,
                patch_mels=config.patch_mels,
                patch_frames=config.patch_frames,
                dim=d,
            )
        )
        for i, b in enumerate(config.blocks):
            a, f = f"blocks.{i}.attn", f"blocks.{i}.ffn"
            qk, v = b.num_heads * b.qk_head_dim, b.num_heads * b.v_head_dim
            kernels += [
                Kernel.of("add_layernorm", tokens=t, dim=d),
                Kernel.of("linear", fmt(f"{a}.q", "float"), tokens=t, **{"in": d, "out": qk}),
                Kernel.of("linear", fmt(f"{a}.k", "float"), tokens=t, **{"in": d, "out": qk}),
                Kernel.of("linear", fmt(f"{a}.v", "float"), tokens=t, **{"in": d, "out": v}),
                Kernel.of("attention", tokens=t, heads=b.num_heads, qk_dim=b.qk_head_dim, v_dim=b.v_head_dim),
                Kernel.of("linear", fmt(f"{a}.o", "float"), tokens=t, **{"in": v, "out": d}),
                Kernel.of("add_layernorm", tokens=t, dim=d),
                Kernel.of("linear_gelu", fmt(f"{f}.fc1", "float"), tokens=t, **{"in": d, "out": b.ffn_dim}),
                Kernel.of("linear", fmt(f"{f}.fc2", "float"), tokens=t, **{"in": b.ffn_dim, "out": d}),
            ]
        kernels += [
            Kernel.of("add_layernorm", tokens=t, dim=d),
            Kernel.of("token_head", tokens=t, dim=d, classes=config.num_classes),
        ]
    elif isinstance(config, CNNConfig):
        height, width, channels = config.front_end.n_mels, config.front_end.frames, 1
        for i, b in enumerate(config.blocks):
            kernels.append(
                Kernel.of(
                    "conv_relu",
                    fmt(f"blocks.{i}.conv", "float"),
                    height=height,
                    width=width,
                    **{"in": channels, "out": b.out_channels},
                )
            )
            channels = b.out_channels
            if b.pool:
                kernels.append(Kernel.of("maxpool", channels=channels, height=height, width=width))
                height, width = height // 2, width // 2
        kernels.append(
            Kernel.of("map_head", channels=channels, height=height, width=width, classes=config.num_classes)
        )
    else:
        raise ConfigError(f"no kernel list for model family {type(config).__name__}")
    unknown = set(formats) - _layer_names(config)
    if unknown:
        raise ConfigError(f"formats name layers the model does not have: {', '.join(sorted(unknown))}")
    return kernels


def _layer_names(config: ModelConfig) -> set[str]:
    if isinstance(config, ASTConfig):
        names = {"patch_embed"}
        for i in range(len(config.blocks)):
            names |= {f"blocks.{i}.attn.{p}" for p in "qkvo"} | {f"blocks.{i}.ffn.fc1", f"blocks.{i}.ffn.fc2"}
        return names
    return {f"blocks.{i}.conv" for i in range(len(config.blocks))}


def recipe_kernels(teacher: ModelConfig, recipe: Recipe) -> list[Kernel]:
    """The kernels of the student ``recipe`` makes of ``teacher`` (architecture only, no weights)."""
    kinds = {"patch_embed": "conv2d"} if isinstance(teacher, ASTConfig) else {}
    formats = {}
    for layer, precision in recipe.precision.items():
        kind = kinds.get(layer, "conv2d" if isinstance(teacher, CNNConfig) else "linear")
        formats[layer] = format_for(kind, precision.weight_bits, precision.activation_bits).name
    return model_kernels(student_config(teacher, recipe), formats)
