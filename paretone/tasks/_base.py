"""The task interface: what a model learns and how it is scored.

A task owns the loss, the distillation loss, the metric (its name and direction), the output
post-processing and the fields of a report, so that training, distillation, evaluation, the
search's first objective and ``run-model`` all agree on them. Adding a task is one module here,
one registration and its conformance tests.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch

from paretone._registry import Registry


class Task(ABC):
    """A learning problem over clips with a fixed set of labels.

    Contract: ``logits`` are (N, classes) float tensors; ``targets`` are what the task's data
    produce (single-label: (N,) int64 class indices). ``score`` is the task's ``metric`` on a
    whole set, a float in [0, 1] where higher is better (``direction`` is always ``"maximize"``).
    Tasks are stateless: one instance serves every thread and process.
    """

    name: ClassVar[str]
    metric: ClassVar[str]  # e.g. "accuracy"; the study's first objective is ``f"val_{metric}"``
    direction: ClassVar[str] = "maximize"

    @property
    def objective(self) -> str:
        """The study objective's name (optuna-dashboard shows it)."""
        return f"val_{self.metric}"

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
    def report(self, logits: torch.Tensor, targets: torch.Tensor) -> dict[str, Any]:
        """The report fields of a test set: at least ``{metric: score}``."""

    def agreement(self, a: torch.Tensor, b: torch.Tensor) -> float:
        """Share of clips on which two models' logits lead to the same decision."""
        return (a.argmax(1) == b.argmax(1)).float().mean().item()


TASKS: Registry[Task] = Registry("task")


def register_task(task: Task) -> Task:
    return TASKS.register(task.name, task)


def task_named(name: str) -> Task:
    """The registered task ``name``; ConfigError naming the known ones otherwise."""
    return TASKS.named(name)
