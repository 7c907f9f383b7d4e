"""Hardware models: calibrate a device, predict latency and memory of compressed models.

Reads the families' kernels and ONNX graphs; knows no Optuna and no Ray (measurement itself is the
``runtime`` room's). The device profile (a JSON file of raw measurements) is the single source of
truth: predictors are fitted from it when constructed, so appending measurements
(``DeviceProfile.add_models``) and constructing a new ``LatencyModel`` is all a refit takes.
"""

from paretone.hw_models._calibrate import CalibrationSummary, calibrate, import_results
from paretone.hw_models._graph import onnx_macs
from paretone.hw_models._kit import KitModel, export_model, merge_results, random_models, write_kit
from paretone.hw_models._latency import LatencyModel, LatencyPrediction
from paretone.hw_models._memory import MemoryModel, MemoryPrediction
from paretone.hw_models._micro import micro_model
from paretone.hw_models._probe import (
    ANCHORS,
    SpeedProbe,
    anchored_latencies,
    choose_anchors,
    choose_sentinels,
    group_of,
    probe_speed,
    record_probe,
    unprobeable_reason,
)
from paretone.hw_models._profile import (
    PROFILE_FORMAT,
    Anchor,
    DeviceProfile,
    KernelMeasurement,
    ModelMeasurement,
    Sentinel,
    is_outdated,
    profile_path,
)
from paretone.hw_models._sweep import SMALL_KEPT, calibration_kernels, random_recipe
from paretone.hw_models._validate import (
    VALIDATION_SEED,
    ErrorStats,
    MemorySpread,
    ValidationReport,
    compare,
    validate,
)

__all__ = [
    "ANCHORS",
    "PROFILE_FORMAT",
    "SMALL_KEPT",
    "VALIDATION_SEED",
    "Anchor",
    "CalibrationSummary",
    "DeviceProfile",
    "ErrorStats",
    "KernelMeasurement",
    "KitModel",
    "LatencyModel",
    "LatencyPrediction",
    "MemoryModel",
    "MemoryPrediction",
    "MemorySpread",
    "ModelMeasurement",
    "Sentinel",
    "SpeedProbe",
    "ValidationReport",
    "anchored_latencies",
    "calibrate",
    "calibration_kernels",
    "choose_anchors",
    "choose_sentinels",
    "compare",
    "export_model",
    "group_of",
    "import_results",
    "is_outdated",
    "merge_results",
    "micro_model",
    "onnx_macs",
    "probe_speed",
    "profile_path",
    "random_models",
    "random_recipe",
    "record_probe",
    "unprobeable_reason",
    "validate",
    "write_kit",
]
