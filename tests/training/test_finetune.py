"""Distillation fine-tuning on real audio: the student learns the teacher's function."""

from __future__ import annotations

import pytest
import torch

from paretone.audio import FrontEndConfig, WaveformSet, load_splits, make_splits
from paretone.compress import Distill, Prune, Quantize, Recipe, apply, teacher_logits
from paretone.models import ASTConfig, build_model
from paretone.training import TrainConfig, distil, fit, predict_logits, score


@pytest.fixture(scope="module")
def sets(fsdd_catalog):
    splits = make_splits(fsdd_catalog, "official")
    return load_splits(splits, fsdd_catalog.labels, FrontEndConfig())


def _subset(data: WaveformSet, n: int) -> WaveformSet:
    return WaveformSet(data.waveforms[:n], data.targets[:n])


@pytest.mark.slow
def test_distilled_student_recovers_from_pruning_and_quantization(sets, tmp_path):
    torch.manual_seed(0)
    teacher = build_model(ASTConfig.uniform(num_classes=10, dim=48, depth=1, heads=4))
    fit(teacher, sets.train, sets.validation, TrainConfig(epochs=3))
    teacher_acc = score(teacher, sets.validation)
    assert teacher_acc > 0.5

    recipe = Recipe.of(
        Prune({"blocks.0.attn.heads": 2}, {"blocks.0.ffn.hidden": 0.25}, importance="taylor"),
        Quantize({"blocks.0.ffn.fc1": "w4", "blocks.0.attn.q": "w8a8"}),
        Distill(temperature=2.0, alpha=0.9),
    )
    train = _subset(sets.train, 800)
    student = apply(recipe, teacher, data=train)
    before = score(student, sets.validation)
    logits = teacher_logits(teacher, train, cache_dir=tmp_path)
    result = distil(
        student,
        train,
        sets.validation,
        logits,
        recipe.distillation,
        TrainConfig(epochs=2, lr=1e-3, warmup_epochs=0).without_augmentation(),
    )
    after = score(student, sets.validation)
    assert result.best_validation_score == pytest.approx(after)
    assert after > before + 0.05  # fine-tuning at the recipe's bit-widths recovers accuracy
    agreement = (
        (
            predict_logits(student, sets.validation).argmax(1)
            == predict_logits(teacher, sets.validation).argmax(1)
        )
        .float()
        .mean()
    )
    assert agreement > 0.6


def test_nan_loss_stops_training_with_a_clear_error(sets):
    model = build_model(ASTConfig.uniform(num_classes=10, dim=16, depth=1, heads=2))
    train = _subset(sets.train, 64)

    def nan_loss(logits, batch):
        return logits.sum() * float("nan")

    with pytest.raises(FloatingPointError, match="training loss became nan"):
        fit(model, train, _subset(sets.validation, 32), TrainConfig(epochs=1), loss_fn=nan_loss)
