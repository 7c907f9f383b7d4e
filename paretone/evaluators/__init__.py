"""Evaluators: recipe -> fine-tuned student -> metrics and artifacts.

Plain, picklable arguments and results, so that the search can run them inside Ray workers.
"""

from paretone.evaluators._evaluate import STUDENT_ENTRIES, STUDENT_ONNX, claim_student_folder, evaluate
from paretone.evaluators._sensitivity import (
    SENSITIVITY_CLIPS,
    Change,
    Sensitivity,
    SensitivityTable,
    measure_sensitivity,
    table_key,
)
from paretone.evaluators._trial import (
    DecodedAudio,
    TeacherContext,
    TrialEvaluator,
    TrialResult,
    load_context,
    resolve_splits,
)

__all__ = [
    "SENSITIVITY_CLIPS",
    "STUDENT_ENTRIES",
    "STUDENT_ONNX",
    "Change",
    "DecodedAudio",
    "Sensitivity",
    "SensitivityTable",
    "TeacherContext",
    "TrialEvaluator",
    "TrialResult",
    "claim_student_folder",
    "evaluate",
    "load_context",
    "measure_sensitivity",
    "resolve_splits",
    "table_key",
]
