"""Kernel lists stand for the real model: same arithmetic, same parameters, runnable micro-models."""

import random

import numpy as np
import onnx
import pytest

from paretone.compress import Recipe
from paretone.errors import ConfigError
from paretone.hw_models import calibration_kernels, micro_model, random_recipe
from paretone.models import ASTConfig, CNNConfig, Kernel, build_model
from paretone.runtime import make_session, random_feeds

TINY_AST = ASTConfig.uniform(num_classes=10, dim=32, depth=2, heads=2, mlp_ratio=2)
TINY_CNN = CNNConfig.uniform(num_classes=10, channels=(8, 8, 16, 16))


def test_recipe_formats_reach_their_kernels():
    recipe = Recipe.from_dict(
        {
            "format": "paretone.recipe/1",
            "precision": {
                "blocks.0.attn.q": {"weight_bits": 4, "activation_bits": None},
                "blocks.1.ffn.fc1": {"weight_bits": 8, "activation_bits": 8},
                "patch_embed": {"weight_bits": 8, "activation_bits": None},
            },
            "front_end": {"implementation": "dft", "hop_length": None},
        }
    )
    kernels = recipe.kernels(TINY_AST)
    formats = [k.format for k in kernels if k.quantized]
    assert sorted(formats) == ["w4", "w8", "w8a8"]
    assert [k.format for k in kernels if k.kind == "frontend"] == ["dft"]


def test_kernel_round_trips_and_rejects_unknown_shapes():
    kernel = Kernel.of("linear", "w8a8", tokens=50, **{"in": 192, "out": 64})
    assert Kernel.from_dict(kernel.to_dict()) == kernel
    assert kernel.key == "linear/w8a8/tokens=50,in=192,out=64"
    with pytest.raises(ConfigError, match="unknown kernel kind"):
        Kernel.of("fft", tokens=1)
    with pytest.raises(ConfigError, match="malformed kernel"):
        Kernel.from_dict({"kind": "linear", "format": "float", "shape": {"tokens": 1}})
    with pytest.raises(ConfigError, match="needs shape fields"):
        Kernel("linear", "float", (("tokens", 1),))


def test_calibration_covers_every_kernel_of_random_students():
    sweep = {k.key for k in calibration_kernels(TINY_AST)}
    groups = {(k.kind, k.format) for k in calibration_kernels(TINY_AST)}
    teacher = build_model(TINY_AST)
    rng = random.Random(5)
    for _ in range(10):
        for kernel in random_recipe(teacher.structure(), rng).kernels(TINY_AST):
            assert (kernel.kind, kernel.format) in groups
            if kernel.kind in ("frontend", "add_layernorm", "token_head", "patch_embed"):
                assert kernel.key in sweep  # fixed shapes are measured exactly


@pytest.mark.parametrize(
    ("kernel", "quantized_op"),
    [
        (Kernel.of("linear", "float", tokens=5, **{"in": 32, "out": 24}), "MatMul"),
        (Kernel.of("linear", "w8a8", tokens=5, **{"in": 32, "out": 24}), "DequantizeLinear"),
        (Kernel.of("linear_gelu", "w4", tokens=5, **{"in": 32, "out": 40}), "MatMulNBits"),
        (Kernel.of("linear", "w2", tokens=5, **{"in": 7, "out": 3}), "MatMulNBits"),
        (Kernel.of("matmul", "w4", tokens=5, **{"in": 32, "out": 8}), "MatMulNBits"),
        (Kernel.of("matmul", "w8a8", tokens=5, **{"in": 32, "out": 8}), "DequantizeLinear"),
        (Kernel.of("attention", tokens=5, heads=2, qk_dim=3, v_dim=4), "Softmax"),
        (Kernel.of("patch_embed", "w8a8", mels=16, frames=11, patch_mels=16, patch_frames=2, dim=8), "Conv"),
        (Kernel.of("conv_relu", "w8", height=6, width=5, **{"in": 3, "out": 4}), "DequantizeLinear"),
        (Kernel.of("maxpool", channels=3, height=6, width=5), "MaxPool"),
        (Kernel.of("map_head", channels=3, height=3, width=2, classes=10), "Gemm"),
        (Kernel.of("add_layernorm", tokens=5, dim=8), "LayerNormalization"),
        (Kernel.of("token_head", tokens=5, dim=8, classes=10), "Gemm"),
        (
            Kernel.of("qconv_relu", "float", height=6, width=5, **{"in": 4, "out": 8}),
            "Concat",
        ),  # built at load
        (Kernel.of("qconv_relu", "w8a8", height=6, width=5, **{"in": 4, "out": 8}), "DequantizeLinear"),
        (Kernel.of("quaternion_input", mels=8, frames=11, learned=0), "Pad"),
        (Kernel.of("quaternion_input", mels=8, frames=11, learned=1), "Conv"),
    ],
    ids=lambda v: v.key if isinstance(v, Kernel) else v,
)
def test_micro_models_run_in_their_format(tmp_path, kernel, quantized_op):
    model = micro_model(kernel)
    assert quantized_op in {n.op_type for n in model.graph.node}
    path = tmp_path / "k.onnx"
    onnx.save(model, path)
    session = make_session(path, threads=1)
    outputs = session.run(None, random_feeds(session))
    assert all(np.isfinite(o).all() for o in outputs)
