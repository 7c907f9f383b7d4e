"""Every registered task passes these checks (a new task passes them by registering)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from paretone.errors import ConfigError
from paretone.tasks import TASKS

LABELS = ("a", "b", "c", "d")


@pytest.fixture(params=sorted(TASKS))
def task(request):
    return TASKS[request.param]


def _label_sets(n: int, seed: int = 0) -> list[tuple[str, ...]]:
    rng = np.random.default_rng(seed)
    return [(LABELS[int(rng.integers(len(LABELS)))],) for _ in range(n)]


def _oracle(targets: torch.Tensor, task) -> torch.Tensor:
    """Logits that decide every clip right: +10 for its labels, -10 elsewhere."""
    hot = torch.nn.functional.one_hot(targets, len(LABELS)).float() if targets.dim() == 1 else targets.float()
    return 20 * hot - 10


def test_metric_is_named_maximised_and_in_range(task):
    targets = task.encode_targets(_label_sets(40), LABELS)
    assert task.objective == f"val_{task.metric}" and task.direction == "maximize"
    perfect = _oracle(targets, task)
    assert task.score(perfect, targets) == pytest.approx(1.0)
    noise = torch.randn(40, len(LABELS), generator=torch.Generator().manual_seed(0))
    assert 0 <= task.score(noise, targets) < 1
    report = task.report(perfect, targets)
    assert report[task.metric] == pytest.approx(task.score(perfect, targets))
    assert task.agreement(noise, noise) == 1.0


def test_loss_is_finite_and_teaches_a_linear_model(task):
    targets = task.encode_targets(_label_sets(64, seed=1), LABELS)
    features = torch.nn.functional.one_hot(torch.arange(64) % 8, 8).float()
    features = features + 0.01 * torch.randn(64, 8, generator=torch.Generator().manual_seed(2))
    features[:, 0] += _oracle(targets, task)[:, 0] / 10  # a learnable signal
    layer = torch.nn.Linear(8, len(LABELS))
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.5)
    first = last = None
    for _ in range(60):
        loss = task.loss(layer(features), targets)
        assert math.isfinite(loss.item()) and loss.item() >= 0
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        first = loss.item() if first is None else first
        last = loss.item()
    assert last < 0.8 * first


def test_distillation_loss_blends_the_soft_and_hard_terms(task):
    targets = task.encode_targets(_label_sets(16, seed=3), LABELS)
    student, teacher = torch.randn(16, 4), torch.randn(16, 4)
    hard = task.loss(student, targets)
    alone = task.distillation_loss(student, teacher, targets, temperature=4.0, alpha=0.0)
    assert alone.item() == pytest.approx(hard.item(), rel=1e-5)
    same = task.distillation_loss(teacher, teacher, targets, temperature=3.0, alpha=1.0)
    assert same.item() == pytest.approx(0.0, abs=1e-5)  # nothing to learn from oneself
    apart = task.distillation_loss(student, teacher, targets, temperature=3.0, alpha=1.0)
    assert apart.item() > 0
    extreme = task.distillation_loss(student * 1e3, teacher, targets, temperature=0.5, alpha=0.5)
    assert math.isfinite(extreme.item())


def test_probabilities_are_what_a_user_reads(task):
    logits = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32) * 3
    probabilities = task.probabilities(logits)
    assert probabilities.shape == logits.shape and ((probabilities >= 0) & (probabilities <= 1)).all()
    assert (probabilities.argmax(1) == logits.argmax(1)).all()  # order preserved


def test_clips_that_do_not_suit_the_task_are_refused(task):
    with pytest.raises(ConfigError):
        task.encode_targets([("zebra",)], LABELS)
    with pytest.raises(ConfigError):
        task.encode_targets([()], LABELS)


def test_decisions_calibrated_on_a_set_recover_its_labels(task):
    targets = task.encode_targets(_label_sets(30, seed=4), LABELS)
    perfect = _oracle(targets, task)
    decision = task.calibrate_decision(perfect, targets)
    decided = task.decide(task.probabilities(perfect.numpy()), decision)
    assert decided.dtype == bool and decided.shape == (30, len(LABELS))
    assert (decided == (perfect.numpy() > 0)).all()
