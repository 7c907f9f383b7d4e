"""The runtime room: model metadata, sessions and their errors, timing with pinned threads."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from paretone.errors import ConfigError
from paretone.models import CNNConfig, build_model, export_onnx
from paretone.runtime import (
    ModelMetadata,
    empty_model,
    make_session,
    measure_latencies,
    measure_latency,
    measure_memory,
    open_session,
    run_logits,
    stamp_metadata,
)

META = ModelMetadata(("yes", "no"), 16000, 32000, "9.9", {"format": "paretone.recipe/2"}, "classification")


def test_metadata_round_trips_through_the_model_file(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(empty_model(), str(path))
    stamp_metadata(path, META)
    stamp_metadata(path, {"other.key": "kept"})  # other keys are kept, ours are replaced
    session = make_session(path, 1)
    assert ModelMetadata.of_session(session, str(path)) == META
    assert session.get_modelmeta().custom_metadata_map["other.key"] == "kept"


@pytest.mark.parametrize(
    ("props", "needle"),
    [
        ({}, "no paretone metadata"),
        ({**META.to_props(), "paretone.labels": "[not json"}, "not valid JSON"),
        ({**META.to_props(), "paretone.labels": "[]"}, "non-empty list"),
        ({**META.to_props(), "paretone.sample_rate": "fast"}, "malformed"),
        ({**META.to_props(), "paretone.clip_samples": "-1"}, "positive"),
        ({**META.to_props(), "paretone.thresholds": "[0.5]"}, "one threshold per label"),
    ],
)
def test_foreign_or_corrupt_metadata_is_one_error(props, needle):
    with pytest.raises(ConfigError, match=needle):
        ModelMetadata.from_props(props, "m.onnx")


def test_unloadable_models_are_one_error_naming_the_fix(tmp_path):
    with pytest.raises(ConfigError, match="no such model file; do this"):
        open_session(tmp_path / "absent.onnx", fix="do this")
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    with pytest.raises(ConfigError, match="ONNX Runtime cannot load it"):
        open_session(tmp_path / "bad.onnx", fix="do this")


def test_logits_in_batches_equal_one_batch(tmp_path):
    model = build_model(CNNConfig.uniform(num_classes=3, channels=(4, 4))).eval()
    path = export_onnx(model, tmp_path / "m.onnx")
    waves = np.random.default_rng(0).standard_normal((10, 8000)).astype(np.float32) * 0.1
    assert np.allclose(
        run_logits(path, waves, batch_size=3), run_logits(path, waves, batch_size=64), atol=1e-5
    )


def test_latency_measurement_reports_pinned_threads(tmp_path):
    model = build_model(CNNConfig.uniform(num_classes=10, channels=(8, 8)))
    path = export_onnx(model, tmp_path / "m.onnx")
    latency = measure_latency(path, threads=1, passes=3, runs=5)
    assert latency.threads == 1 and latency.repeats == 15 and latency.passes == 3
    assert 0 < latency.p10_ms <= latency.median_ms <= latency.p90_ms
    assert latency.latency_ms <= latency.median_ms  # the quietest pass is at most the overall median


def test_each_pass_is_recorded_with_when_it_ran_and_a_repeated_path_is_timed_each_time(tmp_path):
    path = export_onnx(build_model(CNNConfig.uniform(num_classes=10, channels=(8, 8))), tmp_path / "m.onnx")
    first, again = measure_latencies([path, path], threads=1, passes=3, runs=3)
    for timing in (first, again):
        assert len(timing.pass_ms) == len(timing.pass_at_s) == 3
        assert timing.latency_ms == pytest.approx(min(timing.pass_ms), abs=1e-6)  # the quietest pass
        assert list(timing.pass_at_s) == sorted(timing.pass_at_s) and timing.pass_at_s[0] >= 0
    # the two entries ran at different moments of every pass: each is its own speed sample
    assert all(a != b for a, b in zip(first.pass_at_s, again.pass_at_s, strict=True))


def test_the_allocator_peak_counts_the_models_tensors_and_does_not_move_between_processes(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    weights = np.ones((512, 512), np.float32)  # 1 MiB of weights, then a 64 KiB activation
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("Relu", ["y"], ["z"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [32, 512])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [32, 512])],
        [numpy_helper.from_array(weights, "w")],
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), path)
    memory = measure_memory(path, threads=1, processes=3)
    assert memory.processes == 3 and memory.peak_bytes > 0
    assert weights.nbytes <= memory.tensor_peak_bytes <= 3 * weights.nbytes  # weights, maybe prepacked
    assert memory.tensor_peak_range_bytes == 0  # the same allocations in every fresh process


def test_memory_figures_are_means_over_fresh_processes() -> None:
    """The resident-memory rise takes two levels between processes (address-space layouts): a
    median would report one of them, the mean the expected rise; a sample without a figure is None."""
    from paretone.runtime._kit_runner import mean_of

    samples: list[dict[str, int | None]] = [{"peak_bytes": 100, "t": 5}, {"peak_bytes": 100, "t": None}]
    samples.append({"peak_bytes": 400, "t": 5})
    assert mean_of(samples, "peak_bytes") == 200
    assert mean_of(samples, "t") is None
