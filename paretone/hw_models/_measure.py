"""Measuring a real ONNX file with ONNX Runtime on this machine."""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LatencyMeasurement:
    """Batch-1 latency over ``repeats`` timed runs after warm-up, with the thread count pinned."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    threads: int
    repeats: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_session(onnx_path: str | os.PathLike[str], *, threads: int):
    """A CPU session with ``threads`` intra-op threads and sequential execution (reproducible)."""
    import onnxruntime as ort  # heavy: keep CLI start-up fast

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


def measure_latency(
    onnx_path: str | os.PathLike[str],
    *,
    threads: int = 1,
    warmup: int = 20,
    repeats: int = 200,
    seed: int = 0,
) -> LatencyMeasurement:
    """Time single-clip inference; the input is noise of the model's declared input length."""
    if threads < 1 or warmup < 0 or repeats < 1:
        raise ValueError("threads and repeats must be >= 1 and warmup >= 0")
    session = make_session(onnx_path, threads=threads)
    (spec,) = session.get_inputs()
    shape = [d if isinstance(d, int) else 1 for d in spec.shape]
    feed = {spec.name: np.random.default_rng(seed).standard_normal(shape).astype(np.float32) * 0.1}
    for _ in range(warmup):
        session.run(None, feed)
    times_ms = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, feed)
        times_ms.append((time.perf_counter() - start) * 1e3)
    deciles = statistics.quantiles(times_ms, n=10) if repeats > 1 else times_ms * 9
    return LatencyMeasurement(
        median_ms=statistics.median(times_ms),
        p10_ms=deciles[0],
        p90_ms=deciles[-1],
        threads=threads,
        repeats=repeats,
    )
