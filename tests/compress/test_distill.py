from __future__ import annotations

import pytest
import torch

from paretone.audio import WaveformSet
from paretone.compress import teacher_logits
from paretone.models import CNNConfig, build_model


def test_teacher_logits_are_cached_on_disk_and_reused(tmp_path, monkeypatch):
    torch.manual_seed(0)
    teacher = build_model(CNNConfig.uniform(num_classes=3, channels=(4,))).eval()
    data = WaveformSet(torch.randn(10, 8000) * 0.1, torch.arange(10) % 3)
    first = teacher_logits(teacher, data, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("teacher-logits-*.safetensors"))) == 1

    def never(*args, **kwargs):
        raise AssertionError("the teacher ran although its logits were cached")

    monkeypatch.setattr(type(teacher), "forward", never)
    assert torch.equal(teacher_logits(teacher, data, cache_dir=tmp_path), first)
    other = WaveformSet(data.waveforms[:5], data.targets[:5])  # other data: another key, teacher runs
    with pytest.raises(AssertionError, match="teacher ran"):
        teacher_logits(teacher, other, cache_dir=tmp_path)
