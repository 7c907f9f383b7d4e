"""Training loops: teachers from labels, compressed students by distillation."""

from paretone.training._augment import augment_waveforms, spec_augment
from paretone.training._config import TrainConfig
from paretone.training._finetune import distil
from paretone.training._loop import EpochRecord, FitResult, fit, predict_logits, score
from paretone.training._teacher import (
    CACHE_DIR,
    DECISION,
    METRICS_FILE,
    ONNX_FILE,
    TEACHER_ENTRIES,
    claim_teacher_folder,
    score_of,
    train_teacher,
)

__all__ = [
    "CACHE_DIR",
    "DECISION",
    "METRICS_FILE",
    "ONNX_FILE",
    "TEACHER_ENTRIES",
    "EpochRecord",
    "FitResult",
    "TrainConfig",
    "augment_waveforms",
    "claim_teacher_folder",
    "distil",
    "fit",
    "predict_logits",
    "score",
    "score_of",
    "spec_augment",
    "train_teacher",
]
