"""ONNX micro-models: one kernel each, in the graph pattern the exporter writes for it.

Float kernels are written with ``onnx.helper`` in the same opset and op pattern as the dynamo
export of the real model; quantized ones then go through ``compress.quantize_onnx``, the very
function the exporter uses, so a calibrated w8a8 linear is the same QDQ graph a student ships with.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from paretone._io import write_atomic
from paretone.audio import FrontEndConfig, LogMel
from paretone.compress import export_onnx, formats_for, quantize_onnx
from paretone.hw_models._kernels import QUANTIZABLE_KINDS, Kernel

OPSET = 20  # what torch's dynamo exporter writes
IR_VERSION = 10  # ONNX Runtime 1.17+ reads it; onnx 1.23 would write 14 by default
LAYER_NODE = "layer"  # the node a quantized format applies to


class _FrontEndOnly(nn.Module):
    def __init__(self, config: FrontEndConfig) -> None:
        super().__init__()
        self.front_end = LogMel(config)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.front_end(waveform)


def _value(name: str, shape: list[int]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _const(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ascontiguousarray(array), name)


def _weights(rng: np.random.Generator, *shape: int) -> np.ndarray:
    fan_in = int(np.prod(shape[1:])) if len(shape) > 2 else shape[0]
    return (rng.standard_normal(shape) / np.sqrt(max(fan_in, 1))).astype(np.float32)


def _graph(kernel: Kernel, rng: np.random.Generator) -> tuple[list, list, list, list]:
    """(nodes, inputs, outputs, initializers) of a float kernel."""
    d = kernel.dims
    make = helper.make_node
    if kernel.kind in ("linear", "linear_gelu"):
        t, n_in, n_out = d["tokens"], d["in"], d["out"]
        nodes = [make("MatMul", ["x", "w"], ["mm"], name=LAYER_NODE), make("Add", ["mm", "b"], ["y0"])]
        nodes.append(
            make("Gelu", ["y0"], ["y"]) if kernel.kind == "linear_gelu" else make("Identity", ["y0"], ["y"])
        )
        inits = [_const("w", _weights(rng, n_in, n_out)), _const("b", np.zeros(n_out, np.float32))]
        return nodes, [_value("x", [1, t, n_in])], [_value("y", [1, t, n_out])], inits
    if kernel.kind == "attention":
        t, h, dq, dv = d["tokens"], d["heads"], d["qk_dim"], d["v_dim"]
        nodes, inits = (
            [],
            [
                _const("qk_shape", np.array([1, t, h, dq], np.int64)),
                _const("v_shape", np.array([1, t, h, dv], np.int64)),
                _const("out_shape", np.array([1, t, h * dv], np.int64)),
                _const("scale", np.array(dq**-0.5, np.float32)),
            ],
        )
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
        inputs = [_value("q", [1, t, h * dq]), _value("k", [1, t, h * dq]), _value("v", [1, t, h * dv])]
        return nodes, inputs, [_value("y", [1, t, h * dv])], inits
    if kernel.kind == "add_layernorm":
        t, dim = d["tokens"], d["dim"]
        nodes = [
            make("Add", ["x", "r"], ["s"]),
            make("LayerNormalization", ["s", "gamma", "beta"], ["y"], axis=-1, epsilon=1e-5),
        ]
        inits = [_const("gamma", np.ones(dim, np.float32)), _const("beta", np.zeros(dim, np.float32))]
        return (
            nodes,
            [_value("x", [1, t, dim]), _value("r", [1, t, dim])],
            [_value("y", [1, t, dim]), _value("s", [1, t, dim])],
            inits,
        )
    if kernel.kind == "patch_embed":
        pm, pf, dim = d["patch_mels"], d["patch_frames"], d["dim"]
        tokens = (d["mels"] // pm) * (d["frames"] // pf)
        nodes = [
            make("Unsqueeze", ["x", "axis1"], ["x4"]),
            make("Conv", ["x4", "w", "b"], ["c"], name=LAYER_NODE, kernel_shape=[pm, pf], strides=[pm, pf]),
            make("Reshape", ["c", "flat"], ["cf"]),
            make("Transpose", ["cf"], ["t"], perm=[0, 2, 1]),
            make("Add", ["t", "pos"], ["y"]),  # the position embedding: tokens x dim stored weights
        ]
        inits = [
            _const("axis1", np.array([1], np.int64)),
            _const("w", _weights(rng, dim, 1, pm, pf)),
            _const("b", np.zeros(dim, np.float32)),
            _const("flat", np.array([1, dim, tokens], np.int64)),
            _const("pos", (0.02 * rng.standard_normal((1, tokens, dim))).astype(np.float32)),
        ]
        return nodes, [_value("x", [1, d["mels"], d["frames"]])], [_value("y", [1, tokens, dim])], inits
    if kernel.kind == "token_head":
        nodes = [
            make("ReduceMean", ["x", "axes"], ["pooled"], keepdims=0),
            make("Gemm", ["pooled", "w", "b"], ["y"], transB=1),
        ]
        inits = [
            _const("axes", np.array([1], np.int64)),
            _const("w", _weights(rng, d["classes"], d["dim"])),
            _const("b", np.zeros(d["classes"], np.float32)),
        ]
        return nodes, [_value("x", [1, d["tokens"], d["dim"]])], [_value("y", [1, d["classes"]])], inits
    if kernel.kind == "conv_relu":
        c_in, c_out, hgt, wid = d["in"], d["out"], d["height"], d["width"]
        nodes = [
            make("Conv", ["x", "w", "b"], ["c"], name=LAYER_NODE, kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
            make("Relu", ["c"], ["y"]),
        ]
        inits = [_const("w", _weights(rng, c_out, c_in, 3, 3)), _const("b", np.zeros(c_out, np.float32))]
        return nodes, [_value("x", [1, c_in, hgt, wid])], [_value("y", [1, c_out, hgt, wid])], inits
    if kernel.kind == "maxpool":
        c, hgt, wid = d["channels"], d["height"], d["width"]
        nodes = [make("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])]
        return nodes, [_value("x", [1, c, hgt, wid])], [_value("y", [1, c, hgt // 2, wid // 2])], []
    if kernel.kind == "map_head":
        nodes = [
            make("ReduceMean", ["x", "axes"], ["pooled"], keepdims=0),
            make("Gemm", ["pooled", "w", "b"], ["y"], transB=1),
        ]
        inits = [
            _const("axes", np.array([2, 3], np.int64)),
            _const("w", _weights(rng, d["classes"], d["channels"])),
            _const("b", np.zeros(d["classes"], np.float32)),
        ]
        shape = [1, d["channels"], d["height"], d["width"]]
        return nodes, [_value("x", shape)], [_value("y", [1, d["classes"]])], inits
    raise ValueError(f"no micro-model for kernel kind {kernel.kind!r}")


def _frontend_model(kernel: Kernel) -> onnx.ModelProto:
    d = kernel.dims
    config = FrontEndConfig(
        clip_samples=d["samples"],
        n_fft=d["n_fft"],
        hop_length=d["hop"],
        n_mels=d["n_mels"],
        normalization="utterance" if d["utterance_norm"] else "none",
        implementation=kernel.format,
    )
    with tempfile.TemporaryDirectory() as tmp:
        return onnx.load(export_onnx(_FrontEndOnly(config), Path(tmp) / "frontend.onnx"))  # type: ignore[arg-type]


def empty_model() -> onnx.ModelProto:
    """A one-node model: what a session run costs (time, memory) before any kernel does work."""
    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph([node], "empty", [_value("x", [1, 1])], [_value("y", [1, 1])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)


def micro_model(kernel: Kernel, *, seed: int = 0) -> onnx.ModelProto:
    """The ONNX model of one kernel in its runtime format; RuntimeError if it would not convert."""
    if kernel.kind == "frontend":
        return _frontend_model(kernel)
    rng = np.random.default_rng(seed)
    nodes, inputs, outputs, inits = _graph(kernel, rng)
    graph = helper.make_graph(nodes, kernel.kind, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    if kernel.format == "float":
        return model
    layer_kind = QUANTIZABLE_KINDS.get(kernel.kind)
    if layer_kind is None:
        raise ValueError(f"kernel {kernel.key}: {kernel.kind} always runs in float")
    fmt = next((f for f in formats_for(layer_kind) if f.name == kernel.format), None)
    if fmt is None:
        raise ValueError(f"kernel {kernel.key}: ONNX Runtime has no {layer_kind} format {kernel.format!r}")
    feeds = [{v.name: rng.standard_normal(_shape(v)).astype(np.float32) for v in inputs} for _ in range(4)]
    quantized, _ = quantize_onnx(model, {LAYER_NODE: (fmt, LAYER_NODE)}, feeds=feeds)
    return quantized


def _shape(value: onnx.ValueInfoProto) -> list[int]:
    return [dim.dim_value for dim in value.type.tensor_type.shape.dim]


def save_micro_model(kernel: Kernel, path: str | os.PathLike[str]) -> Path:
    model = micro_model(kernel)
    write_atomic(path, lambda tmp: onnx.save(model, str(tmp)))
    return Path(path)
