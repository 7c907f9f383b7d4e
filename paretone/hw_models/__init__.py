"""Hardware models: calibrate a device, predict latency and memory, measure real ONNX files.

Reads ONNX graphs and model configurations; knows no Optuna and no Ray. The device profile (a
JSON file of raw measurements) is the single source of truth: predictors are fitted from it when
constructed, so appending measurements (``DeviceProfile.add_models``) and constructing a new
``LatencyModel`` is all a refit takes.
"""

from paretone.hw_models._calibrate import CalibrationSummary, calibrate, import_results
from paretone.hw_models._graph import onnx_macs
from paretone.hw_models._kernels import KERNEL_KINDS, Kernel, model_kernels, recipe_kernels
from paretone.hw_models._kit import KitModel, export_model, merge_results, random_models, write_kit
from paretone.hw_models._kit_runner import fingerprint
from paretone.hw_models._kit_runner import run as run_kit
from paretone.hw_models._latency import LatencyModel, LatencyPrediction
from paretone.hw_models._measure import (
    LatencyMeasurement,
    make_session,
    measure_latencies,
    measure_latencies_isolated,
    measure_latency,
    measure_peak_bytes,
    measure_session_peak_bytes,
)
from paretone.hw_models._memory import MemoryModel, MemoryPrediction
from paretone.hw_models._profile import (
    PROFILE_FORMAT,
    DeviceProfile,
    KernelMeasurement,
    ModelMeasurement,
    is_outdated,
    profile_path,
)
from paretone.hw_models._sweep import calibration_kernels, random_recipe
from paretone.hw_models._validate import VALIDATION_SEED, ErrorStats, ValidationReport, compare, validate

__all__ = [
    "KERNEL_KINDS",
    "PROFILE_FORMAT",
    "VALIDATION_SEED",
    "CalibrationSummary",
    "DeviceProfile",
    "ErrorStats",
    "Kernel",
    "KernelMeasurement",
    "KitModel",
    "LatencyMeasurement",
    "LatencyModel",
    "LatencyPrediction",
    "MemoryModel",
    "MemoryPrediction",
    "ModelMeasurement",
    "ValidationReport",
    "calibrate",
    "calibration_kernels",
    "compare",
    "export_model",
    "fingerprint",
    "import_results",
    "is_outdated",
    "make_session",
    "measure_latencies",
    "measure_latencies_isolated",
    "measure_latency",
    "measure_peak_bytes",
    "measure_session_peak_bytes",
    "merge_results",
    "model_kernels",
    "onnx_macs",
    "profile_path",
    "random_models",
    "random_recipe",
    "recipe_kernels",
    "run_kit",
    "validate",
    "write_kit",
]
