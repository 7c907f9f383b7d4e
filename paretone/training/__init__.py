"""Supervised training of teachers; later, the distillation fine-tuning of students builds on it."""

from paretone.training._augment import augment_waveforms, spec_augment
from paretone.training._config import TrainConfig
from paretone.training._loop import EpochRecord, FitResult, accuracy, fit, predict_logits
from paretone.training._teacher import METRICS_FILE, ONNX_FILE, train_teacher

__all__ = [
    "METRICS_FILE",
    "ONNX_FILE",
    "EpochRecord",
    "FitResult",
    "TrainConfig",
    "accuracy",
    "augment_waveforms",
    "fit",
    "predict_logits",
    "spec_augment",
    "train_teacher",
]
