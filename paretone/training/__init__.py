"""Training loops: teachers from labels, compressed students by distillation."""

from paretone.training._augment import augment_waveforms, spec_augment
from paretone.training._config import TrainConfig
from paretone.training._finetune import distil
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
    "distil",
    "fit",
    "predict_logits",
    "spec_augment",
    "train_teacher",
]
