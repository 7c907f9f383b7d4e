"""Running ONNX: session policy, input and output names, model metadata, latency and memory measurement.

The bottom floor of the house: numpy, onnx and onnxruntime only, nothing of paretone's models,
compression or search. ``_kit_runner`` is copied verbatim into calibration kits, so a device with
only onnxruntime and numpy measures exactly as this machine does.
"""

from paretone.runtime._kit_runner import fingerprint, make_session, random_feeds
from paretone.runtime._kit_runner import run as run_kit
from paretone.runtime._measure import (
    LatencyMeasurement,
    measure_latencies,
    measure_latencies_isolated,
    measure_latency,
    measure_peak_bytes,
    measure_session_peak_bytes,
)
from paretone.runtime._metadata import DEFAULT_TASK, ModelMetadata, stamp_metadata
from paretone.runtime._session import (
    INPUT_NAME,
    IR_VERSION,
    OPSET,
    OUTPUT_NAME,
    empty_model,
    open_session,
    run_logits,
)

__all__ = [
    "DEFAULT_TASK",
    "INPUT_NAME",
    "IR_VERSION",
    "OPSET",
    "OUTPUT_NAME",
    "LatencyMeasurement",
    "ModelMetadata",
    "empty_model",
    "fingerprint",
    "make_session",
    "measure_latencies",
    "measure_latencies_isolated",
    "measure_latency",
    "measure_peak_bytes",
    "measure_session_peak_bytes",
    "open_session",
    "random_feeds",
    "run_kit",
    "run_logits",
    "stamp_metadata",
]
