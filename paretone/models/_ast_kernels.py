"""The ``ast`` family's own kernels: patch embedding, attention, add + layer norm, token head.

Registered at import (``paretone.models._ast`` imports this module), so calibration can sweep them
and the latency model can price an AST from its kernels like any other family.
"""

from __future__ import annotations

import numpy as np
from onnx import helper

from paretone.models._kernels import (
    LAYER_NODE,
    Dims,
    Graph,
    KernelKind,
    const,
    register_kernel_kind,
    value,
    weights,
)


def _patch_tokens(d: Dims) -> int:
    return (d["mels"] // d["patch_mels"]) * (d["frames"] // d["patch_frames"])


def _patch_embed_graph(d: Dims, _: str, rng: np.random.Generator) -> Graph:
    pm, pf, dim = d["patch_mels"], d["patch_frames"], d["dim"]
    tokens = _patch_tokens(d)
    make = helper.make_node
    nodes = [
        make("Unsqueeze", ["x", "axis1"], ["x4"]),
        make("Conv", ["x4", "w", "b"], ["c"], name=LAYER_NODE, kernel_shape=[pm, pf], strides=[pm, pf]),
        make("Reshape", ["c", "flat"], ["cf"]),
        make("Transpose", ["cf"], ["t"], perm=[0, 2, 1]),
        make("Add", ["t", "pos"], ["y"]),  # the position embedding: tokens x dim stored weights
    ]
    inits = [
        const("axis1", np.array([1], np.int64)),
        const("w", weights(rng, dim, 1, pm, pf)),
        const("b", np.zeros(dim, np.float32)),
        const("flat", np.array([1, dim, tokens], np.int64)),
        const("pos", (0.02 * rng.standard_normal((1, tokens, dim))).astype(np.float32)),
    ]
    return nodes, [value("x", [1, d["mels"], d["frames"]])], [value("y", [1, tokens, dim])], inits


def _attention_graph(d: Dims, _: str, rng: np.random.Generator) -> Graph:
    t, h, dq, dv = d["tokens"], d["heads"], d["qk_dim"], d["v_dim"]
    make = helper.make_node
    nodes: list = []
    inits = [
        const("qk_shape", np.array([1, t, h, dq], np.int64)),
        const("v_shape", np.array([1, t, h, dv], np.int64)),
        const("out_shape", np.array([1, t, h * dv], np.int64)),
        const("scale", np.array(dq**-0.5, np.float32)),
    ]
    for name, shape in (("q", "qk_shape"), ("k", "qk_shape"), ("v", "v_shape")):
        nodes.append(make("Reshape", [name, shape], [f"{name}4"]))
        perm = [0, 2, 3, 1] if name == "k" else [0, 2, 1, 3]
        nodes.append(make("Transpose", [f"{name}4"], [f"{name}h"], perm=perm))
    nodes += [
        make("MatMul", ["qh", "kh"], ["scores"]),
        make("Mul", ["scores", "scale"], ["scaled"]),
        make("Softmax", ["scaled"], ["weights"], axis=-1),
        make("MatMul", ["weights", "vh"], ["context"]),
        make("Transpose", ["context"], ["context_t"], perm=[0, 2, 1, 3]),
        make("Reshape", ["context_t", "out_shape"], ["y"]),
    ]
    inputs = [value("q", [1, t, h * dq]), value("k", [1, t, h * dq]), value("v", [1, t, h * dv])]
    return nodes, inputs, [value("y", [1, t, h * dv])], inits


def _add_layernorm_graph(d: Dims, _: str, rng: np.random.Generator) -> Graph:
    t, dim = d["tokens"], d["dim"]
    make = helper.make_node
    nodes = [
        make("Add", ["x", "r"], ["s"]),
        make("LayerNormalization", ["s", "gamma", "beta"], ["y"], axis=-1, epsilon=1e-5),
    ]
    inits = [const("gamma", np.ones(dim, np.float32)), const("beta", np.zeros(dim, np.float32))]
    io = [value("x", [1, t, dim]), value("r", [1, t, dim])]
    return nodes, io, [value("y", [1, t, dim]), value("s", [1, t, dim])], inits


def _token_head_graph(d: Dims, _: str, rng: np.random.Generator) -> Graph:
    make = helper.make_node
    nodes = [
        make("ReduceMean", ["x", "axes"], ["pooled"], keepdims=0),
        make("Gemm", ["pooled", "w", "b"], ["y"], transB=1),
    ]
    inits = [
        const("axes", np.array([1], np.int64)),
        const("w", weights(rng, d["classes"], d["dim"])),
        const("b", np.zeros(d["classes"], np.float32)),
    ]
    return nodes, [value("x", [1, d["tokens"], d["dim"]])], [value("y", [1, d["classes"]])], inits


register_kernel_kind(
    KernelKind(
        "patch_embed",
        ("mels", "frames", "patch_mels", "patch_frames", "dim"),
        "conv2d",
        macs=lambda d, f: _patch_tokens(d) * d["dim"] * d["patch_mels"] * d["patch_frames"],
        activation_bytes=lambda d: 4 * (d["mels"] * d["frames"] + 2 * _patch_tokens(d) * d["dim"]),
        graph=_patch_embed_graph,
        params=lambda d: d["dim"] * (d["patch_mels"] * d["patch_frames"] + 1 + _patch_tokens(d)),
    )
)
register_kernel_kind(
    KernelKind(
        "attention",
        ("tokens", "heads", "qk_dim", "v_dim"),
        None,
        macs=lambda d, f: d["tokens"] ** 2 * d["heads"] * (d["qk_dim"] + d["v_dim"]),
        activation_bytes=lambda d: (
            4
            * (
                2 * d["tokens"] * d["heads"] * (2 * d["qk_dim"] + d["v_dim"])
                + 2 * d["tokens"] ** 2 * d["heads"]
            )
        ),
        graph=_attention_graph,
    )
)
register_kernel_kind(
    KernelKind(
        "add_layernorm",
        ("tokens", "dim"),
        None,
        macs=lambda d, f: 0,
        activation_bytes=lambda d: 4 * 4 * d["tokens"] * d["dim"],
        graph=_add_layernorm_graph,
        params=lambda d: 2 * d["dim"],
    )
)
register_kernel_kind(
    KernelKind(
        "token_head",
        ("tokens", "dim", "classes"),
        None,
        macs=lambda d, f: d["dim"] * d["classes"],
        activation_bytes=lambda d: 4 * (d["tokens"] * d["dim"] + d["dim"] + d["classes"]),
        graph=_token_head_graph,
        params=lambda d: (d["dim"] + 1) * d["classes"],
    )
)
