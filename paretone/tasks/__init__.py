"""Tasks: what is learned and how it is scored (loss, distillation loss, metric, post-processing).

Knows torch and numpy only; models, training, evaluation, search and ``run-model`` ask the task.
"""

from paretone.tasks._base import TASKS, Task, register_task, task_for, task_named
from paretone.tasks._classification import CLASSIFICATION, Classification
from paretone.tasks._multilabel import MULTILABEL, MultiLabel

__all__ = [
    "CLASSIFICATION",
    "MULTILABEL",
    "TASKS",
    "Classification",
    "MultiLabel",
    "Task",
    "register_task",
    "task_for",
    "task_named",
]
