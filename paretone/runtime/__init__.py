"""Running ONNX: session policy, input and output names, model metadata, latency and memory measurement.

The bottom floor of the house: numpy, onnx and onnxruntime only, nothing of paretone's models,
compression or search. ``_kit_runner`` is copied verbatim into calibration kits, so a device with
only onnxruntime and numpy measures exactly as this machine does.
"""

from paretone.runtime._kit_runner import MEMORY_PROCESSES, fingerprint, make_session, random_feeds
from paretone.runtime._kit_runner import run as run_kit
from paretone.runtime._kit_runner import run_in_fresh_process as run_kit_in_fresh_process
from paretone.runtime._measure import (
    LatencyMeasurement,
    MemoryMeasurement,
    measure_latencies,
    measure_latencies_isolated,
    measure_latency,
    measure_memory,
    measure_peak_bytes,
    measure_session_peak_bytes,
)
from paretone.runtime._metadata import DEFAULT_TASK, ModelMetadata, stamp_metadata
from paretone.runtime._session import (
    INPUT_NAME,
    IR_VERSION,
    OPSET,
    OUTPUT_NAME,
    STATE_SUFFIX,
    STREAM_INPUT,
    STREAM_OUTPUT,
    empty_model,
    open_session,
    run_logits,
)
from paretone.runtime._stream import (
    Streamer,
    StreamRun,
    Windower,
    chunk_samples,
    is_streaming,
    run_stream,
    run_windows,
    zero_state,
)

__all__ = [
    "DEFAULT_TASK",
    "INPUT_NAME",
    "IR_VERSION",
    "MEMORY_PROCESSES",
    "OPSET",
    "OUTPUT_NAME",
    "STATE_SUFFIX",
    "STREAM_INPUT",
    "STREAM_OUTPUT",
    "LatencyMeasurement",
    "MemoryMeasurement",
    "ModelMetadata",
    "StreamRun",
    "Streamer",
    "Windower",
    "chunk_samples",
    "empty_model",
    "fingerprint",
    "is_streaming",
    "make_session",
    "measure_latencies",
    "measure_latencies_isolated",
    "measure_latency",
    "measure_memory",
    "measure_peak_bytes",
    "measure_session_peak_bytes",
    "open_session",
    "random_feeds",
    "run_kit",
    "run_kit_in_fresh_process",
    "run_logits",
    "run_stream",
    "run_windows",
    "stamp_metadata",
    "zero_state",
]
