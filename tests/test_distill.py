from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from paretone.audio import WaveformSet
from paretone.compress import Distillation, distillation_loss, teacher_logits
from paretone.models import CNNConfig, build_model


def test_loss_blends_soft_and_hard_terms():
    student, teacher = torch.randn(8, 5), torch.randn(8, 5)
    targets = torch.randint(0, 5, (8,))
    hard = F.cross_entropy(student, targets)
    assert distillation_loss(student, teacher, targets, Distillation(4.0, 0.0)) == pytest.approx(hard.item())
    assert distillation_loss(teacher, teacher, targets, Distillation(4.0, 1.0)).item() == pytest.approx(
        0, abs=1e-6
    )
    t = 3.0
    p_teacher = F.softmax(teacher / t, 1)
    kl = (p_teacher * (p_teacher.log() - F.log_softmax(student / t, 1))).sum(1).mean()
    expected = 0.25 * t * t * kl + 0.75 * hard
    assert distillation_loss(student, teacher, targets, Distillation(t, 0.25)).item() == pytest.approx(
        expected.item(), rel=1e-5
    )
    assert math.isfinite(distillation_loss(student * 1e3, teacher, targets, Distillation(0.5, 0.5)).item())


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
