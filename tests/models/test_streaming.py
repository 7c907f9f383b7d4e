"""Streaming exports: one chunk and its state per call, outputs equal to the whole recording's."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from paretone.audio import FrontEndConfig
from paretone.compress import Quantize, Recipe, apply, calibrate_activations, export_compressed
from paretone.errors import ConfigError
from paretone.models import CNN_FAMILY, GRU_FAMILY, LSTM_FAMILY, build_model, export_stream
from paretone.runtime import make_session, run_stream, zero_state


def _model(family, implementation: str = "stft", seed: int = 0):
    torch.manual_seed(seed)
    fe = FrontEndConfig(implementation=implementation)
    return build_model(family.teacher_config(num_classes=4, front_end=fe, hidden=(24, 16))).eval()


def _recording(seconds: float = 3.0) -> torch.Tensor:
    return torch.randn(1, int(8000 * seconds), generator=torch.Generator().manual_seed(5)) * 0.1


@pytest.mark.parametrize(("family", "implementation", "chunk_ms"), [
    (LSTM_FAMILY, "stft", 20), (LSTM_FAMILY, "dft", 100), (GRU_FAMILY, "stft", 40), (GRU_FAMILY, "dft", 20),
])  # fmt: skip
def test_streamed_frames_equal_the_whole_recordings(family, implementation, chunk_ms, tmp_path):
    model = _model(family, implementation)
    chunk = 8 * chunk_ms
    path = export_stream(family.streaming(model), tmp_path / "s.onnx", chunk_samples=chunk)
    session = make_session(path, 1)
    names = {i.name for i in session.get_inputs()}
    assert names == {"chunk", "context", "h0", "c0", "h1", "c1"}
    assert {o.name for o in session.get_outputs()} == {"frame_logits"} | {
        f"{n}_out" for n in names - {"chunk"}
    }
    wave = _recording()
    with torch.no_grad():
        offline = model.frame_logits(model.features(wave))[0].numpy()
    run = run_stream(session, wave[0].numpy(), sample_rate=8000, hop_samples=80)
    assert run.logits.shape == offline.shape
    assert np.abs(run.logits - offline).max() < 1e-4
    assert run.state_bytes == sum(v.nbytes for v in zero_state(session).values())
    assert len(run.call_ms) == wave.shape[1] // chunk and run.real_time_factor > 0


def test_a_quantized_student_streams_with_its_int8_lstm(tmp_path):
    teacher = _model(LSTM_FAMILY)
    recipe = Recipe.of(Quantize({"rnn.0": "w8a8-dynamic", "rnn.1": "w8a8-dynamic", "head": "w8a8"}))
    student = apply(recipe, teacher)
    calibration = _recording(9.0).reshape(9, 8000)
    calibrate_activations(student, calibration)  # the head's int8 input range, pinned in the export
    student.eval()
    path = tmp_path / "int8-stream.onnx"
    report = export_compressed(student, recipe, path, calibration=calibration, chunk_samples=320)
    assert {d.format.name for d in report} == {"w8a8-dynamic", "w8a8"}
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ops.count("DynamicQuantizeLSTM") == 2
    wave = _recording()
    with torch.no_grad():
        fake = student.frame_logits(student.features(wave))[0].numpy()
    streamed = run_stream(path, wave[0].numpy(), sample_rate=8000, hop_samples=80).logits
    gap = np.abs(streamed - fake)  # int8 rounding; ONNX Runtime quantizes each call's input and state
    assert np.median(gap) < 5e-3 and gap.max() < 0.1


def test_models_that_cannot_stream_and_ragged_chunks_are_refused(tmp_path):
    cnn = build_model(CNN_FAMILY.teacher_config(num_classes=4, front_end=FrontEndConfig(), channels=(8, 8)))
    with pytest.raises(ConfigError, match="cannot stream"):
        export_compressed(
            cnn, Recipe(), tmp_path / "x.onnx", calibration=torch.zeros(2, 8000), chunk_samples=320
        )
    with pytest.raises(ConfigError, match="not a whole number of 80-sample hops"):
        lstm = _model(LSTM_FAMILY)
        export_compressed(
            lstm, Recipe(), tmp_path / "y.onnx", calibration=torch.zeros(2, 8000), chunk_samples=300
        )
    assert not (tmp_path / "x.onnx").exists() and not (tmp_path / "y.onnx").exists()
