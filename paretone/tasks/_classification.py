"""Single-label classification: one class per clip, softmax outputs, top-1 accuracy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from paretone.errors import ConfigError
from paretone.tasks._base import Task, register_task


class Classification(Task):
    name = "classification"
    metric = "accuracy"

    def encode_targets(self, label_sets: Sequence[Sequence[str]], labels: Sequence[str]) -> torch.Tensor:
        index = {label: i for i, label in enumerate(labels)}
        targets = []
        for clip in label_sets:
            if len(clip) != 1 or clip[0] not in index:
                raise ConfigError(
                    f"single-label classification needs exactly one known label per clip, got {clip}"
                )
            targets.append(index[clip[0]])
        return torch.tensor(targets, dtype=torch.long)

    def loss(
        self, logits: torch.Tensor, targets: torch.Tensor, *, label_smoothing: float = 0.0
    ) -> torch.Tensor:
        return F.cross_entropy(logits, targets, label_smoothing=label_smoothing)

    def distillation_loss(
        self,
        student_logits: torch.Tensor,
        teacher_logits: torch.Tensor,
        targets: torch.Tensor,
        *,
        temperature: float,
        alpha: float,
    ) -> torch.Tensor:
        """alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * cross-entropy.

        The T^2 factor keeps the soft term's gradient scale independent of T (Hinton et al., 2015).
        """
        t = temperature
        soft = F.kl_div(
            F.log_softmax(student_logits / t, dim=1),
            F.log_softmax(teacher_logits / t, dim=1),
            log_target=True,
            reduction="batchmean",
        )
        return alpha * t * t * soft + (1 - alpha) * F.cross_entropy(student_logits, targets)

    def score(self, logits: torch.Tensor, targets: torch.Tensor) -> float:
        return (logits.argmax(1) == targets).float().mean().item() if len(targets) else 0.0

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)

    def decide(self, probabilities: np.ndarray, decision: Sequence[float] | None) -> np.ndarray:
        return probabilities == probabilities.max(axis=-1, keepdims=True)

    def report(
        self, logits: torch.Tensor, targets: torch.Tensor, decision: Sequence[float] | None = None
    ) -> dict[str, Any]:
        return {self.metric: self.score(logits, targets)}


CLASSIFICATION = register_task(Classification())
