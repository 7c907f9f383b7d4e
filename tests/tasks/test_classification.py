"""Single-label classification's own formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from paretone.tasks import CLASSIFICATION


def test_distillation_is_hintons_blend():
    student, teacher = torch.randn(8, 5), torch.randn(8, 5)
    targets = torch.randint(0, 5, (8,))
    hard, t = F.cross_entropy(student, targets), 3.0
    p_teacher = F.softmax(teacher / t, 1)
    kl = (p_teacher * (p_teacher.log() - F.log_softmax(student / t, 1))).sum(1).mean()
    expected = 0.25 * t * t * kl + 0.75 * hard
    got = CLASSIFICATION.distillation_loss(student, teacher, targets, temperature=t, alpha=0.25)
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)


def test_accuracy_and_softmax():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
    assert CLASSIFICATION.score(logits, torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)
    assert np.allclose(CLASSIFICATION.probabilities(logits.numpy()).sum(1), 1.0)
    assert CLASSIFICATION.encode_targets([("b",), ("a",)], ("a", "b")).tolist() == [1, 0]
