"""Distillation fine-tuning of a compressed student from cached teacher logits."""

from __future__ import annotations

import torch
from rich.progress import Progress

from paretone.audio import WaveformSet
from paretone.compress import Distill
from paretone.models import AudioModel
from paretone.tasks import CLASSIFICATION, Task
from paretone.training._config import TrainConfig
from paretone.training._loop import FitResult, fit


def distil(
    student: AudioModel,
    train: WaveformSet,
    validation: WaveformSet,
    teacher_train_logits: torch.Tensor,
    distillation: Distill,
    config: TrainConfig,
    *,
    task: Task = CLASSIFICATION,
    progress: Progress | None = None,
    device: str | torch.device = "cpu",
) -> FitResult:
    """Fine-tune ``student`` in place on the task's distillation loss; early stop on its metric.

    ``teacher_train_logits`` are the teacher's logits on ``train`` (row i for clip i), computed once
    (see ``compress.teacher_logits``), so the teacher never runs here. Pass a config without
    augmentation (``config.without_augmentation()``): the cached logits are of the clean clips, so
    an augmented input would be paired with a target for another sound. ``device``: where it
    trains (see ``fit``); the cached logits stay on the CPU and move batch by batch.
    """
    if teacher_train_logits.shape[0] != len(train):
        raise ValueError("teacher logits and training set differ in length")

    def loss_fn(logits: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        return task.distillation_loss(
            logits,
            teacher_train_logits[batch].to(logits.device),
            train.targets[batch].to(logits.device),
            temperature=distillation.temperature,
            alpha=distillation.alpha,
        )

    return fit(
        student, train, validation, config, task=task, loss_fn=loss_fn, progress=progress, device=device
    )
