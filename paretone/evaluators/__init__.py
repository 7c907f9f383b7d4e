"""Evaluators: recipe -> fine-tuned student -> metrics and artifacts.

Plain, picklable arguments and results, so that the search can run them inside Ray workers.
"""

from paretone.evaluators._classify import classify_files
from paretone.evaluators._evaluate import STUDENT_ONNX, evaluate
from paretone.evaluators._trial import TeacherContext, TrialEvaluator, load_context, resolve_splits

__all__ = [
    "STUDENT_ONNX",
    "TeacherContext",
    "TrialEvaluator",
    "classify_files",
    "evaluate",
    "load_context",
    "resolve_splits",
]
