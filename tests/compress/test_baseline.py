"""The one-liners measured beside every pick: `quantize_dynamic` as is, and with the front-end kept."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from paretone.audio import FrontEndConfig
from paretone.compress import front_end_nodes, quantize_dynamic_baseline
from paretone.models import AST_FAMILY, build_model, export_onnx
from paretone.runtime import run_logits

QUANTIZED_OPS = {"MatMulInteger", "DynamicQuantizeLinear", "ConvInteger", "DynamicQuantizeMatMul"}


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    torch.manual_seed(0)
    config = AST_FAMILY.teacher_config(num_classes=10, front_end=FrontEndConfig(), dim=32, depth=1, heads=2)
    model = build_model(config).eval()
    return export_onnx(model, tmp_path_factory.mktemp("baseline") / "teacher.onnx")


def _quantized_front_end(path) -> list[str]:
    graph = onnx.load(str(path)).graph
    return [n.name for n in graph.node if n.op_type in QUANTIZED_OPS and n.name.startswith("front_end")]


def test_the_careful_baseline_keeps_the_front_end_float_and_quantizes_the_rest(teacher, tmp_path):
    assert front_end_nodes(onnx.load(str(teacher)))  # the mel filterbank's MatMul among them
    plain = quantize_dynamic_baseline(teacher, tmp_path / "plain.onnx")
    careful = quantize_dynamic_baseline(teacher, tmp_path / "careful.onnx", exclude_front_end=True)
    assert _quantized_front_end(plain)  # the one-liner quantizes the filterbank
    assert not _quantized_front_end(careful)
    ops = {n.op_type for n in onnx.load(str(careful)).graph.node}
    assert ops & QUANTIZED_OPS  # the transformer's layers are still int8
    # Keeping the front-end float brings the logits closer to the fp32 teacher's.
    clips = np.random.default_rng(0).normal(0, 0.1, (8, 8000)).astype(np.float32)
    reference = run_logits(teacher, clips)
    far = np.abs(run_logits(plain, clips) - reference).mean()
    near = np.abs(run_logits(careful, clips) - reference).mean()
    assert near < far


def test_a_graph_without_front_end_nodes_is_refused_not_silently_left_as_is(tmp_path):
    x = onnx.helper.make_tensor_value_info("waveform", onnx.TensorProto.FLOAT, [1, 4])
    y = onnx.helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, [1, 4])
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["waveform"], ["logits"], name="head")], "g", [x], [y]
    )
    path = tmp_path / "bare.onnx"
    onnx.save(onnx.helper.make_model(graph), str(path))
    with pytest.raises(ValueError, match="no node of a 'front_end' module"):
        quantize_dynamic_baseline(path, tmp_path / "out.onnx", exclude_front_end=True)
