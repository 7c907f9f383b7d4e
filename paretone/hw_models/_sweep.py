"""Which kernels to calibrate: every shape and format compression can make of a teacher.

Widths are swept on a grid (every 8 channels, plus 1, 2 and 4): ONNX Runtime's GEMM kernels work
in SIMD tiles of 8 or 16 columns, so latency is a staircase in the width and a coarser grid would
step over the stairs. Random compressed whole models (for the per-model overhead) come from
``random_recipe``, which the validation uses too, with other seeds.
"""

from __future__ import annotations

import dataclasses
import random

from paretone.compress import FrontEndChoice, LayerPrecision, Recipe, formats_for, front_end_options
from paretone.hw_models._kernels import Kernel, model_kernels
from paretone.models import ATTENTION_HEADS, ASTConfig, CNNConfig, ModelConfig, ModelStructure

LINEAR_FORMATS = tuple(f.name for f in formats_for("linear"))
CONV_FORMATS = tuple(f.name for f in formats_for("conv2d"))


def width_grid(size: int, step: int = 8) -> list[int]:
    """1, 2, 4, then every ``step`` up to and including ``size``."""
    return sorted({w for w in (1, 2, 4) if w <= size} | set(range(step, size + 1, step)) | {size})


def calibration_kernels(teacher: ModelConfig) -> list[Kernel]:
    """Kernels to measure so that every student of ``teacher`` is covered (every front-end choice)."""
    implementations, hops = front_end_options(teacher.front_end)
    kernels: set[Kernel] = set()
    for implementation in implementations:
        for hop in hops:
            front_end = dataclasses.replace(teacher.front_end, implementation=implementation, hop_length=hop)
            kernels |= _students_kernels(dataclasses.replace(teacher, front_end=front_end))
    return sorted(kernels, key=lambda k: k.key)


def _students_kernels(teacher: ModelConfig) -> set[Kernel]:
    kernels = set(model_kernels(teacher))
    if isinstance(teacher, ASTConfig):
        t, d = teacher.num_patches, teacher.dim
        qk = max(b.num_heads * b.qk_head_dim for b in teacher.blocks)
        v = max(b.num_heads * b.v_head_dim for b in teacher.blocks)
        ffn = max(b.ffn_dim for b in teacher.blocks)
        fe = teacher.front_end
        for fmt in CONV_FORMATS:
            kernels.add(
                Kernel.of(
                    "patch_embed",
                    fmt,
                    mels=fe.n_mels,
                    frames=fe.frames,
                    patch_mels=teacher.patch_mels,
                    patch_frames=teacher.patch_frames,
                    dim=d,
                )
            )
        for fmt in LINEAR_FORMATS:
            for n in width_grid(max(qk, v)):
                kernels.add(Kernel.of("linear", fmt, tokens=t, **{"in": d, "out": n}))
            for n in width_grid(max(v, ffn)):
                kernels.add(Kernel.of("linear", fmt, tokens=t, **{"in": n, "out": d}))
            for n in width_grid(ffn):
                kernels.add(Kernel.of("linear_gelu", fmt, tokens=t, **{"in": d, "out": n}))
        heads = max(b.num_heads for b in teacher.blocks)
        qk_dims = width_grid(max(b.qk_head_dim for b in teacher.blocks), step=16)
        v_dims = width_grid(max(b.v_head_dim for b in teacher.blocks), step=16)
        for h in range(1, heads + 1):
            for dq in qk_dims:
                for dv in v_dims:
                    kernels.add(Kernel.of("attention", tokens=t, heads=h, qk_dim=dq, v_dim=dv))
    elif isinstance(teacher, CNNConfig):
        height, width, previous = teacher.front_end.n_mels, teacher.front_end.frames, [1]
        for block in teacher.blocks:
            outs = width_grid(block.out_channels, step=max(8, block.out_channels // 4))
            for fmt in CONV_FORMATS:
                for c_in in previous:
                    for c_out in outs:
                        kernels.add(
                            Kernel.of(
                                "conv_relu", fmt, height=height, width=width, **{"in": c_in, "out": c_out}
                            )
                        )
            if block.pool:
                for c in outs:
                    kernels.add(Kernel.of("maxpool", channels=c, height=height, width=width))
                height, width = height // 2, width // 2
            previous = outs
        for c in previous:
            kernels.add(
                Kernel.of("map_head", channels=c, height=height, width=width, classes=teacher.num_classes)
            )
    return kernels


def random_recipe(structure: ModelStructure, rng: random.Random) -> Recipe:
    """A random compression of a teacher: what the search might propose, for fitting and validation.

    Each unit is pruned with probability 1/2 (to a uniform kept fraction), each layer gets a
    uniformly drawn format and the front-end a drawn implementation and hop, so small, large, float
    and low-bit models all occur.
    """
    heads, channels, precision = {}, {}, {}
    implementations, hops = front_end_options(structure.front_end)
    front_end = FrontEndChoice(rng.choice(implementations), rng.choice(hops))
    for unit in structure.prunable:
        if rng.random() < 0.5:
            continue
        if unit.kind == ATTENTION_HEADS:
            heads[unit.name] = rng.randint(1, unit.size)
        else:
            channels[unit.name] = round(rng.uniform(max(1 / unit.size, 0.05), 1.0), 3)
    for layer in structure.quantizable:
        fmt = rng.choice(formats_for(layer.kind))
        if fmt.name != "float":
            precision[layer.name] = LayerPrecision(fmt.weight_bits, fmt.activation_bits)
    return Recipe(heads=heads, channels=channels, precision=precision, front_end=front_end)
