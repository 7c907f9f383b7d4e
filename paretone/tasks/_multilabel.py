"""Multi-label detection: any number of labels per clip, sigmoid outputs, macro mAP.

Training uses binary cross-entropy; distillation blends it with binary cross-entropy against the
teacher's soft targets at a temperature on the logits (the T^2 factor keeps the soft term's gradient
scale independent of T). The metric is macro mean average precision (torchmetrics), which needs no
threshold; decisions (F1, ``run-model``) use per-class thresholds tuned on the validation split,
stored with the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from paretone.errors import ConfigError
from paretone.tasks._base import Task, register_task


class MultiLabel(Task):
    name = "multilabel"
    metric = "map"

    def encode_targets(self, label_sets: Sequence[Sequence[str]], labels: Sequence[str]) -> torch.Tensor:
        index = {label: i for i, label in enumerate(labels)}
        targets = torch.zeros(len(label_sets), len(labels))
        for row, clip in enumerate(label_sets):
            if not clip:
                raise ConfigError(f"multi-label clip {row} has no label; every clip needs one or more")
            for label in clip:
                if label not in index:
                    raise ConfigError(f"label {label!r} is not one of {', '.join(labels)}")
                targets[row, index[label]] = 1.0
        return targets

    def loss(
        self, logits: torch.Tensor, targets: torch.Tensor, *, label_smoothing: float = 0.0
    ) -> torch.Tensor:
        smoothed = targets * (1 - label_smoothing) + 0.5 * label_smoothing
        return F.binary_cross_entropy_with_logits(logits, smoothed)

    def distillation_loss(
        self,
        student_logits: torch.Tensor,
        teacher_logits: torch.Tensor,
        targets: torch.Tensor,
        *,
        temperature: float,
        alpha: float,
    ) -> torch.Tensor:
        t = temperature
        soft = F.binary_cross_entropy_with_logits(student_logits / t, torch.sigmoid(teacher_logits / t))
        floor = F.binary_cross_entropy_with_logits(teacher_logits / t, torch.sigmoid(teacher_logits / t))
        # minus the teacher's own entropy: zero when the student matches it, as a KL divergence
        return alpha * t * t * (soft - floor) + (1 - alpha) * F.binary_cross_entropy_with_logits(
            student_logits, targets
        )

    def average_precision(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-class average precision (NaN for a class with no positive clip: undefined)."""
        from torchmetrics.functional.classification import binary_average_precision

        ap = torch.full((targets.shape[1],), float("nan"))
        with torch.no_grad():
            for c in range(targets.shape[1]):
                if targets[:, c].sum() > 0:
                    ap[c] = binary_average_precision(logits[:, c].float(), targets[:, c].long())
        return ap

    def score(self, logits: torch.Tensor, targets: torch.Tensor) -> float:
        if len(targets) == 0:
            return 0.0
        ap = self.average_precision(logits, targets)
        return float(ap[~ap.isnan()].mean()) if (~ap.isnan()).any() else 0.0

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-logits))

    def calibrate_decision(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[float, ...]:
        """Per class, the probability threshold maximising F1 on this (validation) set: the cut
        halfway between the lowest score it calls present and the next score below, so a clip
        scored like the calibration set's decides the same way; 0.5 for a class without positives."""
        probabilities = torch.sigmoid(logits.double()).numpy()
        truth = targets.numpy() > 0.5
        return tuple(_best_cut(probabilities[:, c], truth[:, c]) for c in range(truth.shape[1]))

    def decide(self, probabilities: np.ndarray, decision: Sequence[float] | None) -> np.ndarray:
        cut = np.array(decision) if decision is not None else np.full(probabilities.shape[-1], 0.5)
        return probabilities >= cut

    def report(
        self, logits: torch.Tensor, targets: torch.Tensor, decision: Sequence[float] | None = None
    ) -> dict[str, Any]:
        ap = self.average_precision(logits, targets)
        cut = np.array(decision) if decision is not None else np.full(targets.shape[1], 0.5)
        decided = torch.sigmoid(logits).numpy() >= cut
        truth = targets.numpy() > 0.5
        per_class = [_f1(decided[:, c], truth[:, c]) for c in range(truth.shape[1])]
        return {
            self.metric: self.score(logits, targets),
            "f1_micro": _f1(decided.ravel(), truth.ravel()),
            "f1_macro": float(np.mean(per_class)),
            "per_class_ap": [None if np.isnan(v) else float(v) for v in ap.tolist()],
        }

    def agreement(self, a: torch.Tensor, b: torch.Tensor) -> float:
        """Share of clip-label decisions (at 0.5) on which the two agree."""
        return ((a > 0) == (b > 0)).float().mean().item()


def _best_cut(scores: np.ndarray, truth: np.ndarray) -> float:
    if not truth.any():
        return 0.5
    levels = np.unique(scores)[::-1]  # candidate cuts, highest first
    f1 = [_f1(scores >= level, truth) for level in levels]
    best = int(np.argmax(f1))
    below = levels[best + 1] if best + 1 < len(levels) else 0.0
    return float((levels[best] + below) / 2)


def _f1(decided: np.ndarray, truth: np.ndarray) -> float:
    tp = float(np.sum(decided & truth))
    fp, fn = float(np.sum(decided & ~truth)), float(np.sum(~decided & truth))
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0


MULTILABEL = register_task(MultiLabel())
