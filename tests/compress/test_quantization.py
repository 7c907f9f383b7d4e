"""Mixed precision: fake quantization for training and real ONNX Runtime kernels for deployment."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from paretone.audio import load_waveforms
from paretone.compress import Prune, Quantize, Recipe, apply, export_compressed, quantize_weight
from paretone.models import ASTConfig, CNNConfig, build_model, export_onnx
from paretone.runtime import make_session, run_logits
from paretone.training import predict_logits


@pytest.fixture(scope="module")
def audio(fsdd_catalog):
    clips = [c for c in fsdd_catalog.clips if c.index in (1, 2)][:64]
    return load_waveforms(clips, fsdd_catalog.labels, sample_rate=8000, clip_samples=8000)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_weight_grid_has_at_most_2_to_the_bits_levels_and_is_idempotent(bits):
    weight = torch.randn(6, 64, generator=torch.Generator().manual_seed(0))
    for block in (None, 32):
        quantized = quantize_weight(weight, bits, block)
        levels = [len(torch.unique(row)) for row in (quantized if block is None else quantized[:, :32])]
        assert max(levels) <= 2**bits
        assert torch.allclose(quantize_weight(quantized, bits, block), quantized, atol=1e-6)
        assert (quantized - weight).abs().max() <= weight.abs().max() / (2 ** (bits - 1) - 0.5)


def test_straight_through_gradient_passes_inside_the_grid_and_stops_where_clipped():
    weight = torch.rand(4, 32, generator=torch.Generator().manual_seed(0)).requires_grad_()
    quantize_weight(weight, 4, 32).sum().backward()
    assert torch.allclose(weight.grad, torch.ones_like(weight))  # one sign per block: nothing clipped
    mixed = torch.tensor([[1.0, -1.0] + [0.1] * 30], requires_grad=True)
    quantize_weight(mixed, 4, 32).sum().backward()
    # the peak 1.0 takes code -8; -1.0 would need +8 and is clipped to 7: no gradient through it
    assert mixed.grad[0, 1] == 0 and mixed.grad[0, 0] == 1 and torch.all(mixed.grad[0, 2:] == 1)


def _ops(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {n.name: n for n in model.graph.node}


def _optimized_ops(path, tmp_path) -> set[str]:
    """The kernels ONNX Runtime actually runs, read from its optimized graph."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return {n.op_type for n in onnx.load(tmp_path / "optimized.onnx").graph.node}


def test_mixed_precision_ast_exports_real_kernels_that_agree(tmp_path, audio):
    torch.manual_seed(0)
    teacher = build_model(ASTConfig.uniform(num_classes=10, dim=64, depth=3, heads=4)).eval()
    formats = {
        q.name: "w8a8"
        for q in teacher.structure().quantizable
        if q.name.startswith("blocks.0") or q.name == "patch_embed"
    }
    formats |= {f"blocks.1.{n}": "w4" for n in ("attn.q", "attn.k", "ffn.fc1")}
    formats |= {"blocks.1.attn.v": "w2", "blocks.1.ffn.fc2": "w8"}
    recipe = Recipe.of(Prune(heads={"blocks.2.attn.heads": 2}), Quantize(formats))
    student = apply(recipe, teacher, data=audio)
    path = tmp_path / "student.onnx"
    report = {r.layer: r for r in export_compressed(student, recipe, path, calibration=audio.waveforms[:32])}

    graph = onnx.load(path)
    nodes = _ops(graph)
    assert report["blocks.1.attn.q"].onnx_node == "blocks.1.attn.q/MatMul_Q4"
    bits = {a.name: a.i for a in nodes["blocks.1.attn.v/MatMul_Q2"].attribute}["bits"]
    assert nodes["blocks.1.attn.v/MatMul_Q2"].op_type == "MatMulNBits" and bits == 2
    assert nodes["blocks.1.ffn.fc2/MatMul_Q8"].op_type == "MatMulNBits"
    assert (
        report["blocks.0.attn.q"].format.name == "w8a8" and report["blocks.2.attn.q"].format.name == "float"
    )
    assert nodes["blocks.2.attn.q/MatMul"].op_type == "MatMul"
    assert sum(n.op_type == "QuantizeLinear" for n in graph.graph.node) >= 3
    runtime_ops = _optimized_ops(path, tmp_path)
    assert "MatMulNBits" in runtime_ops
    assert runtime_ops & {"MatMulIntegerToFloat", "QLinearMatMul", "MatMulInteger", "DynamicQuantizeMatMul"}
    assert "QLinearConv" in runtime_ops  # the int8 patch embedding

    with torch.inference_mode():
        expected = predict_logits(student, audio)
    got = torch.from_numpy(run_logits(path, audio.waveforms.numpy()))
    assert (got.argmax(1) == expected.argmax(1)).float().mean() >= 0.95
    assert (got - expected).abs().max() < 0.5 * expected.abs().max()
    float_file = export_onnx(teacher, tmp_path / "teacher.onnx").stat().st_size
    assert path.stat().st_size < 0.8 * float_file


def test_int8_cnn_and_weight_only_conv(tmp_path, audio):
    torch.manual_seed(0)
    teacher = build_model(CNNConfig.uniform(num_classes=10, channels=(8, 8, 16, 16))).eval()
    recipe = Recipe.of(
        Quantize(
            {"blocks.0.conv": "w8", "blocks.1.conv": "w8a8", "blocks.2.conv": "w8a8", "blocks.3.conv": "w8a8"}
        )
    )
    student = apply(recipe, teacher, data=audio)
    path = tmp_path / "cnn.onnx"
    export_compressed(student, recipe, path, calibration=audio.waveforms[:32])
    nodes = _ops(onnx.load(path))
    assert nodes["blocks.0.conv/Conv_weight_dq"].op_type == "DequantizeLinear"
    assert "QLinearConv" in _optimized_ops(path, tmp_path)
    with torch.inference_mode():
        expected = predict_logits(student, audio)
    got = torch.from_numpy(run_logits(path, audio.waveforms.numpy()))
    assert (got.argmax(1) == expected.argmax(1)).float().mean() >= 0.95
    make_session(path, threads=1)  # loads in a plain session too

    # The fixed-shape export a phone runtime takes (batch 1) calibrates its int8 ranges clip by clip
    # and computes what the dynamic-batch export computes.
    fixed = tmp_path / "cnn-fixed.onnx"
    export_compressed(student, recipe, fixed, calibration=audio.waveforms[:32], batch=1)
    graph_input = onnx.load(fixed).graph.input[0]
    assert [d.dim_value for d in graph_input.type.tensor_type.shape.dim] == [1, audio.waveforms.shape[1]]
    one = audio.waveforms[:4].numpy()
    each = np.concatenate([run_logits(fixed, clip[None]) for clip in one])
    assert (each.argmax(1) == run_logits(path, one).argmax(1)).all()


def test_unsupported_formats_never_fall_back_silently(tmp_path):
    teacher = build_model(CNNConfig.uniform(num_classes=10, channels=(4,)))
    with pytest.raises(Exception, match="no runtime format 'w4'"):
        apply(Recipe.of(Quantize({"blocks.0.conv": "w4"})), teacher)
    # a conversion that silently did nothing is caught by the format's verifier
    from paretone.compress import RUNTIME_FORMATS, quantize_onnx

    w8a8 = next(f for f in RUNTIME_FORMATS if f.name == "w8a8" and f.layer_kind == "conv2d")
    unconverted = type(w8a8)(**{**w8a8.__dict__, "convert": lambda model, nodes, conversion: model})
    model = onnx.load(str(export_onnx(teacher, tmp_path / "t.onnx")))
    with pytest.raises(RuntimeError, match="did not convert to w8a8"):
        quantize_onnx(model, {"blocks.0.conv": (unconverted, "blocks.0.conv/Conv")})
