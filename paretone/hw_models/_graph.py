"""Static facts read from an ONNX graph (no execution)."""

from __future__ import annotations

import math
import os

import onnx

RECURRENT = {"LSTM": 4, "GRU": 3, "DynamicQuantizeLSTM": 4}  # op -> gates


def _recurrent_macs(node: onnx.NodeProto, shapes: dict[str, list[int]]) -> int:
    """Every gate multiplies the frame's input and the previous state: frames x gates x hidden x
    (inputs + hidden). X is (frames, batch, inputs) in ONNX's default layout."""
    hidden = next(a.i for a in node.attribute if a.name == "hidden_size")
    x = shapes.get(node.input[0])
    if x is None:
        raise ValueError(f"ONNX node {node.name} ({node.op_type}) has no inferred input shape")
    return x[0] * x[1] * RECURRENT[node.op_type] * hidden * (x[2] + hidden)


def _dims(value: onnx.ValueInfoProto) -> list[int]:
    # Symbolic dimensions (the batch) count as 1: MACs are reported per clip.
    return [d.dim_value if d.HasField("dim_value") else 1 for d in value.type.tensor_type.shape.dim]


def onnx_macs(model: str | os.PathLike[str] | onnx.ModelProto) -> int:
    """Multiply-accumulates of the Conv, MatMul and Gemm nodes and of the recurrent gates (LSTM,
    GRU, DynamicQuantizeLSTM), per clip (batch 1).

    These are the layers that carry almost all arithmetic; element-wise nodes, normalisation and
    the STFT are not counted, matching ``models.Complexity.dense_macs``.
    """
    proto = onnx.load(str(model)) if not isinstance(model, onnx.ModelProto) else model
    inferred = onnx.shape_inference.infer_shapes(proto)
    graph = inferred.graph
    shapes = {v.name: _dims(v) for v in (*graph.value_info, *graph.input, *graph.output)}
    shapes.update({t.name: list(t.dims) for t in graph.initializer})
    total = 0
    for node in graph.node:
        if node.op_type in RECURRENT:
            total += _recurrent_macs(node, shapes)
            continue
        if node.op_type not in ("Conv", "MatMul", "Gemm"):
            continue
        a, b, out = shapes.get(node.input[0]), shapes.get(node.input[1]), shapes.get(node.output[0])
        if a is None or b is None or out is None:
            raise ValueError(f"ONNX node {node.name} ({node.op_type}) has no inferred shape")
        if node.op_type == "Conv":  # weight (out_c, in_c / groups, kh, kw)
            total += math.prod(out) * math.prod(b[1:])
        elif node.op_type == "MatMul":
            total += math.prod(out) * a[-1]
        else:
            trans_a = next((a.i for a in node.attribute if a.name == "transA"), 0)
            total += math.prod(out) * (a[0] if trans_a else a[-1])
    return total
