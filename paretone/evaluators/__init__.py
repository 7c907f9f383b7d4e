"""Evaluators: recipe -> fine-tuned student -> metrics and artifacts.

Plain, picklable arguments and results, so that the search can run them as Ray tasks.
"""

from paretone.evaluators._evaluate import STUDENT_ONNX, evaluate

__all__ = ["STUDENT_ONNX", "evaluate"]
