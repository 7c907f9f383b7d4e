"""ONNX export runs from the raw waveform and agrees with PyTorch (real ONNX Runtime sessions)."""

from __future__ import annotations

import onnx
import pytest
import torch

from paretone.audio import load_waveforms
from paretone.compress import export_onnx, onnx_logits
from paretone.hw_models import measure_latency, onnx_macs
from paretone.models import ASTConfig, CNNConfig, build_model, count_complexity


@pytest.fixture(scope="module")
def real_audio(fsdd_catalog):
    clips = [c for c in fsdd_catalog.clips if c.index == 1][:24]
    return load_waveforms(clips, fsdd_catalog.labels, sample_rate=8000, clip_samples=8000)


@pytest.mark.parametrize(
    "config",
    [
        ASTConfig.uniform(num_classes=10, dim=64, depth=2, heads=4),
        CNNConfig.uniform(num_classes=10, channels=(8, 8, 16, 16)),
    ],
    ids=["ast", "cnn"],
)
def test_onnx_matches_pytorch_and_counts_the_same_macs(tmp_path, real_audio, config):
    torch.manual_seed(0)
    model = build_model(config).eval()
    path = export_onnx(model, tmp_path / "m.onnx")
    graph = onnx.load(path)
    assert [i.name for i in graph.graph.input] == ["waveform"]
    assert "STFT" in {n.op_type for n in graph.graph.node}  # the front-end is inside the graph
    with torch.inference_mode():
        expected = model(real_audio.waveforms)
    got = onnx_logits(path, real_audio.waveforms)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() < 1e-3
    assert torch.equal(got.argmax(1), expected.argmax(1))
    assert onnx_macs(path) == count_complexity(model).dense_macs


def test_latency_measurement_reports_pinned_threads(tmp_path):
    model = build_model(CNNConfig.uniform(num_classes=10, channels=(8, 8)))
    path = export_onnx(model, tmp_path / "m.onnx")
    latency = measure_latency(path, threads=1, passes=3, runs=5)
    assert latency.threads == 1 and latency.repeats == 15 and latency.passes == 3
    assert 0 < latency.p10_ms <= latency.median_ms <= latency.p90_ms
    assert latency.latency_ms <= latency.median_ms  # the quietest pass is at most the overall median
