"""The task interface: what a model learns and how it is scored.

A task owns the loss, the distillation loss, the metric (its name and direction), the output
post-processing and the fields of a report, so that training, distillation, evaluation, the
search's first objective and ``run-model`` all agree on them. Adding a task is one module here,
one registration and its conformance tests.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from paretone._registry import Registry


class Task(ABC):
    """A learning problem over clips with a fixed set of labels.

    Contract: ``logits`` are (N, classes) float tensors; ``targets`` are what ``encode_targets``
    produces (single-label: (N,) int64 class indices; multi-label: (N, classes) float 0/1).
    ``score`` is the task's ``metric`` on a whole set, a float in [0, 1] where higher is better
    (``direction`` is always ``"maximize"``). Tasks are stateless: one instance serves every
    thread and process.
    """

    name: ClassVar[str]
    metric: ClassVar[str]  # e.g. "accuracy"; the study's first objective is ``f"val_{metric}"``
    direction: ClassVar[str] = "maximize"

    @property
    def objective(self) -> str:
        """The study objective's name (optuna-dashboard shows it)."""
        return f"val_{self.metric}"

    @abstractmethod
    def encode_targets(self, label_sets: Sequence[Sequence[str]], labels: Sequence[str]) -> torch.Tensor:
        """The targets of clips with these label sets (``labels`` fixes the order); ConfigError
        for a clip the task cannot represent (no label, an unknown one, several for single-label)."""

    @abstractmethod
    def loss(
        self, logits: torch.Tensor, targets: torch.Tensor, *, label_smoothing: float = 0.0
    ) -> torch.Tensor:
        """Training loss of a batch (mean over the batch)."""

    @abstractmethod
    def distillation_loss(
        self,
        student_logits: torch.Tensor,
        teacher_logits: torch.Tensor,
        targets: torch.Tensor,
        *,
        temperature: float,
        alpha: float,
    ) -> torch.Tensor:
        """``alpha`` x the soft term at ``temperature`` + (1 - ``alpha``) x the hard loss."""

    @abstractmethod
    def score(self, logits: torch.Tensor, targets: torch.Tensor) -> float:
        """The metric over a whole set (in [0, 1], higher is better)."""

    @abstractmethod
    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Post-processing of raw logits (N, classes) into what a user reads."""

    @abstractmethod
    def report(
        self, logits: torch.Tensor, targets: torch.Tensor, decision: Sequence[float] | None = None
    ) -> dict[str, Any]:
        """The report fields of a test set: at least ``{metric: score}`` (``decision``: see
        ``calibrate_decision``)."""

    def calibrate_decision(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[float, ...] | None:
        """Parameters of the decision rule, fitted on the validation split and shipped with the
        model (multi-label: one threshold per class); None for a rule without parameters."""
        return None

    @abstractmethod
    def decide(self, probabilities: np.ndarray, decision: Sequence[float] | None) -> np.ndarray:
        """Per clip, a boolean per label: what the model says is present."""

    def agreement(self, a: torch.Tensor, b: torch.Tensor) -> float:
        """Share of clips on which two models' logits lead to the same decision."""
        return (a.argmax(1) == b.argmax(1)).float().mean().item()


TASKS: Registry[Task] = Registry("task")


def register_task(task: Task) -> Task:
    return TASKS.register(task.name, task)


def task_named(name: str) -> Task:
    """The registered task ``name``; ConfigError naming the known ones otherwise."""
    return TASKS.named(name)


def task_for(catalog: Any) -> Task:
    """The task a dataset's labels call for: multi-label when its clips may carry several."""
    return TASKS.named("multilabel" if getattr(catalog, "multilabel", False) else "classification")
