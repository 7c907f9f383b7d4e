"""The multi-label task: mAP as the field computes it, per-class thresholds, the soft loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paretone.errors import ConfigError
from paretone.tasks import MULTILABEL

LABELS = ("dog", "siren", "speech")


def test_targets_are_multi_hot_and_bad_label_sets_are_refused():
    targets = MULTILABEL.encode_targets([("dog", "speech"), ("siren",)], LABELS)
    assert targets.tolist() == [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    with pytest.raises(ConfigError, match="no label"):
        MULTILABEL.encode_targets([()], LABELS)
    with pytest.raises(ConfigError, match="'cat' is not one of"):
        MULTILABEL.encode_targets([("cat",)], LABELS)


def test_map_is_the_mean_of_per_class_average_precision():
    # class 0: ranking pos, neg, pos -> AP = (1/1 + 2/3) / 2; class 1: perfect -> 1
    logits = torch.tensor([[3.0, 2.0], [2.0, -1.0], [1.0, -2.0]])
    targets = torch.tensor([[1.0, 1.0], [0.0, 0.0], [1.0, 0.0]])
    ap = MULTILABEL.average_precision(logits, targets)
    assert ap.tolist() == pytest.approx([(1 + 2 / 3) / 2, 1.0])
    assert MULTILABEL.score(logits, targets) == pytest.approx(((1 + 2 / 3) / 2 + 1) / 2)


def test_a_class_without_positives_is_left_out_of_map():
    logits = torch.tensor([[3.0, 0.0], [-3.0, 1.0]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    assert np.isnan(MULTILABEL.average_precision(logits, targets)[1].item())
    assert MULTILABEL.score(logits, targets) == pytest.approx(1.0)


def test_thresholds_are_tuned_per_class_and_decide_the_report():
    # class 0 positives sit at p=0.85 and negatives at p=0.7: 0.5 would call everything present
    p = torch.tensor([[0.85, 0.9], [0.7, 0.1], [0.86, 0.2], [0.7, 0.95]])
    logits = torch.log(p / (1 - p))
    targets = torch.tensor([[1.0, 1.0], [0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    thresholds = MULTILABEL.calibrate_decision(logits, targets)
    assert 0.7 < thresholds[0] <= 0.85 and thresholds[1] <= 0.9
    at_half = MULTILABEL.report(logits, targets)
    tuned = MULTILABEL.report(logits, targets, thresholds)
    assert at_half["f1_macro"] < 1.0 and tuned["f1_macro"] == pytest.approx(1.0)
    assert tuned["f1_micro"] == pytest.approx(1.0) and len(tuned["per_class_ap"]) == 2
    assert MULTILABEL.decide(p.numpy(), thresholds).tolist() == (targets > 0).tolist()


def test_distillation_at_a_temperature_pulls_towards_the_teachers_soft_targets():
    teacher = torch.tensor([[4.0, -4.0, 0.0]])
    targets = torch.tensor([[1.0, 0.0, 0.0]])
    near = MULTILABEL.distillation_loss(teacher + 0.1, teacher, targets, temperature=2.0, alpha=1.0)
    far = MULTILABEL.distillation_loss(-teacher, teacher, targets, temperature=2.0, alpha=1.0)
    assert 0 <= near.item() < far.item()
