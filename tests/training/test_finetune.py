"""Distillation fine-tuning on real audio: the student learns the teacher's function."""

from __future__ import annotations

import pytest
import torch

from paretone.audio import FrontEndConfig, WaveformSet, load_splits, make_splits
from paretone.compress import Distill, Prune, Quantize, Recipe, apply, load_student, teacher_logits
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


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
def test_distillation_fine_tunes_on_cuda_and_returns_the_student_to_the_cpu(sets, tmp_path):
    torch.manual_seed(0)
    teacher = build_model(ASTConfig.uniform(num_classes=10, dim=32, depth=1, heads=2)).eval()
    recipe = Recipe.of(Quantize({"blocks.0.ffn.fc1": "w4"}), Distill(temperature=2.0, alpha=0.9))
    train, validation = _subset(sets.train, 256), _subset(sets.validation, 128)
    logits = teacher_logits(teacher, train, cache_dir=tmp_path)
    config = TrainConfig(epochs=1, lr=1e-3, warmup_epochs=0).without_augmentation()
    trained = {}
    for device in ("cpu", "cuda"):
        student = apply(recipe, teacher, data=train)
        result = distil(student, train, validation, logits, recipe.distillation, config, device=device)
        assert all(p.device.type == "cpu" for p in student.parameters())  # exported from the CPU
        assert result.best_validation_score == pytest.approx(score(student, validation))
        trained[device] = predict_logits(student, validation)
    # the same training on either device: the same function up to float reordering
    agreement = (trained["cpu"].argmax(1) == trained["cuda"].argmax(1)).float().mean()
    assert agreement > 0.9


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_a_cuda_worker_without_a_gpu_is_refused_before_loading_anything(tmp_path):
    from paretone.errors import ConfigError
    from paretone.evaluators import TrialEvaluator

    with pytest.raises(ConfigError, match=r"no CUDA GPU torch can use.*--gpus-per-worker 0"):
        TrialEvaluator(tmp_path / "no-teacher-here", device="cuda")


@pytest.mark.slow  # three one-epoch fine-tunings of the tiny teacher
def test_a_fine_tuning_seed_changes_the_student_and_the_same_seed_repeats_it(tiny_teacher, tmp_path):
    from paretone.evaluators import TrialEvaluator

    evaluator = TrialEvaluator(tiny_teacher)
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        evaluator.fine_tune(Recipe().to_dict(), epochs=1, out_dir=tmp_path / name, seed=seed)
    weights = {name: load_student(tmp_path / name)[0].model.state_dict() for name in "abc"}
    assert all(torch.equal(weights["a"][key], weights["b"][key]) for key in weights["a"])  # a search's trials
    assert not all(torch.equal(weights["a"][key], weights["c"][key]) for key in weights["a"])
