"""The recurrent families: streamable by construction, int8 LSTM for real, GRU refused with its reason."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from paretone.audio import FrontEndConfig
from paretone.compress import Quantize, Recipe, apply, export_compressed
from paretone.errors import ConfigError
from paretone.models import GRU_FAMILY, LSTM_FAMILY, LSTMConfig, build_model, export_onnx
from paretone.runtime import run_logits


def _lstm(hidden=(24, 16), seed: int = 0):
    torch.manual_seed(seed)
    config = LSTM_FAMILY.teacher_config(num_classes=4, front_end=FrontEndConfig(), hidden=hidden)
    return build_model(config).eval()


def _waves(n: int = 8) -> torch.Tensor:
    return torch.randn(n, 8000, generator=torch.Generator().manual_seed(3)) * 0.1


def test_the_front_end_is_made_streamable_and_a_non_streaming_one_is_refused():
    model = _lstm()
    fe = model.config.front_end
    assert (fe.padding, fe.normalization) == ("causal", "none")
    with pytest.raises(ConfigError, match="must stream"):
        LSTMConfig(4, FrontEndConfig(), (16,))


def test_a_frame_depends_only_on_audio_up_to_it():
    model = _lstm()
    waves = _waves(2)
    later = waves.clone()
    later[:, 4000:] = torch.randn(2, 4000) * 0.3  # change the second half only
    with torch.no_grad():
        a = model.frame_logits(model.features(waves))
        b = model.frame_logits(model.features(later))
    hop = model.config.front_end.hop_length
    untouched = 4000 // hop  # frames ending before sample 4000
    assert torch.allclose(a[:, :untouched], b[:, :untouched], atol=1e-6)
    assert not torch.allclose(a[:, untouched:], b[:, untouched:], atol=1e-3)


def test_int8_lstm_ships_as_dynamic_quantize_lstm_computing_what_was_fine_tuned(tmp_path):
    teacher = _lstm(hidden=(64, 48))
    recipe = Recipe.of(Quantize({"rnn.0": "w8a8-dynamic", "rnn.1": "w8a8-dynamic"}))
    student = apply(recipe, teacher).eval()
    path = tmp_path / "int8.onnx"
    report = export_compressed(student, recipe, path, calibration=_waves(8))
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ops.count("DynamicQuantizeLSTM") == 2 and "LSTM" not in ops
    assert {d.layer: d.format.name for d in report}["rnn.1"] == "w8a8-dynamic"
    float_path = export_onnx(teacher, tmp_path / "float.onnx")
    assert path.stat().st_size < 0.5 * float_path.stat().st_size
    waves = _waves(8)
    with torch.no_grad():
        fake = student(waves).numpy()
        exact = teacher(waves).numpy()
    shipped = run_logits(path, waves.numpy())
    # the fake-quantized student predicts the shipped int8 model better than the float teacher does
    assert np.abs(shipped - fake).max() < np.abs(shipped - exact).max()
    assert np.abs(shipped - fake).max() < 0.05 * np.abs(fake).max()


def test_gru_layers_refuse_int8_and_say_why():
    config = GRU_FAMILY.teacher_config(num_classes=4, front_end=FrontEndConfig(), hidden=(16,))
    structure = GRU_FAMILY.structure(config)
    with pytest.raises(ConfigError, match=r"no int8 GRU kernel.*onnxruntime issue"):
        Recipe.of(Quantize({"rnn.0": "w8a8-dynamic"})).check(structure)
    Recipe.of(Quantize({"head": "w8a8"})).check(structure)  # its linear head quantizes


def test_pruned_hidden_units_leave_a_smaller_lstm_of_the_same_kind():
    from paretone.compress import Prune

    teacher = _lstm(hidden=(32, 16))
    student = apply(Recipe.of(Prune(channels={"rnn.0.hidden": 0.5})), teacher)
    assert student.config.hidden == (16, 16)
    assert student.rnn[0].hidden_size == 16 and student.rnn[1].input_size == 16


def test_exports_reusing_one_torchlib_registry_write_the_file_a_fresh_registry_writes(tmp_path, monkeypatch):
    """The registry is copied per export, so the custom LSTM translation of one export neither
    leaks into nor is lost from the next."""
    from torch.onnx._internal.exporter._registration import ONNXRegistry

    import paretone.models._onnx as onnx_export

    model = _lstm().eval()
    first, again = (export_onnx(model, tmp_path / f"{n}.onnx").read_bytes() for n in ("a", "b"))
    monkeypatch.setattr(ONNXRegistry, "from_torchlib", ONNXRegistry.from_torchlib.__wrapped__)
    monkeypatch.setattr(onnx_export, "_reuse_torchlib_registry", lambda: None)
    fresh = export_onnx(model, tmp_path / "fresh.onnx").read_bytes()
    assert first == again == fresh
    assert [n.op_type for n in onnx.load(str(tmp_path / "a.onnx")).graph.node].count("LSTM") == 2
