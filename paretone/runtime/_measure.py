"""Measuring real ONNX files with ONNX Runtime on this machine.

Several models compared side by side are timed in interleaved passes (the same method as
calibration, see ``_kit_runner``), so a slow phase of a shared machine hits them all alike.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from paretone.runtime import _kit_runner


@dataclass(frozen=True)
class LatencyMeasurement:
    """Batch-1 latency with the thread count pinned.

    ``latency_ms``: median of the quietest pass (what predictions are fitted to and compared with);
    ``median_ms``, ``p10_ms``, ``p90_ms``, ``p95_ms``: over all timed runs of all passes;
    ``pass_ms``: each pass's median, ``pass_at_s``: when that pass timed this model (seconds since
    the measurement started, mid-timing), so a caller can relate each pass to the device's speed
    then (``hw_models.anchored_latencies`` does, with anchor models timed in the same passes).
    """

    latency_ms: float
    median_ms: float
    p10_ms: float
    p90_ms: float
    threads: int
    repeats: int
    passes: int
    p95_ms: float | None = None  # recorded since streaming budgets (p95 per chunk)
    pass_ms: tuple[float, ...] = ()
    pass_at_s: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_latencies(
    onnx_paths: list[str | os.PathLike[str]],
    *,
    threads: int = 1,
    passes: int = 5,
    runs: int = 40,
    warmup: int = 10,
) -> list[LatencyMeasurement]:
    """Time every model in ``passes`` passes (shuffled order each pass) of ``runs`` runs each.

    A path may appear more than once: each occurrence is timed on its own, at its own place in each
    pass (how anchors are spread through a campaign)."""
    if threads < 1 or passes < 1 or runs < 1 or warmup < 0:
        raise ValueError("threads, passes and runs must be >= 1 and warmup >= 0")
    paths = [Path(p) for p in onnx_paths]
    times: list[list[list[float]]] = [[] for _ in paths]
    at_s: list[list[float]] = [[] for _ in paths]
    start = time.perf_counter()
    for pass_index in range(passes):
        order = list(range(len(paths)))
        random.Random(pass_index).shuffle(order)
        for i in order:
            begun = time.perf_counter()
            times[i].append(_kit_runner.time_runs(paths[i], threads=threads, warmup=warmup, runs=runs))
            at_s[i].append(((begun + time.perf_counter()) / 2) - start)
    out = []
    for per_pass, when in zip(times, at_s, strict=True):
        summary = _kit_runner.summarize(per_pass)
        out.append(
            LatencyMeasurement(
                latency_ms=summary["latency_ms"],
                median_ms=summary["median_ms"],
                p10_ms=summary["p10_ms"],
                p90_ms=summary["p90_ms"],
                threads=threads,
                repeats=summary["repeats"],
                passes=passes,
                p95_ms=summary["p95_ms"],
                pass_ms=tuple(summary["pass_ms"]),
                pass_at_s=tuple(round(t, 3) for t in when),
            )
        )
    return out


_ISOLATED = """
import json, sys
from paretone.runtime._measure import measure_latencies
args = json.loads(sys.argv[1])
print(json.dumps([m.to_dict() for m in measure_latencies(args.pop("paths"), **args)]))
"""


def measure_latencies_isolated(
    onnx_paths: list[str | os.PathLike[str]], *, threads: int = 1, passes: int = 7, runs: int = 50
) -> list[LatencyMeasurement]:
    """``measure_latencies`` in a fresh, otherwise idle process: the caller's torch threads, caches
    and allocations stay out of the timing (what a deployed process sees)."""
    args = {"paths": [str(p) for p in onnx_paths], "threads": threads, "passes": passes, "runs": runs}
    done = subprocess.run(
        [sys.executable, "-c", _ISOLATED, json.dumps(args)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"latency measurement process failed: {tail[0]}")
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    return [
        LatencyMeasurement(**{**m, "pass_ms": tuple(m["pass_ms"]), "pass_at_s": tuple(m["pass_at_s"])})
        for m in rows
    ]


def measure_latency(
    onnx_path: str | os.PathLike[str], *, threads: int = 1, passes: int = 5, runs: int = 40
) -> LatencyMeasurement:
    """One model alone (for side-by-side comparisons use ``measure_latencies``)."""
    return measure_latencies([onnx_path], threads=threads, passes=passes, runs=runs)[0]


@dataclass(frozen=True)
class MemoryMeasurement:
    """Memory of loading and running one model, sampled in fresh processes: the resident-memory
    rise (what the device's OS sees) and ONNX Runtime's allocator peak (the model's own tensors),
    each a mean over the processes' address-space layouts (``_kit_runner.MEMORY_PROCESSES``) with
    its range between them (the measurement's own spread)."""

    peak_bytes: int
    peak_range_bytes: int
    tensor_peak_bytes: int | None  # None: this onnxruntime records no allocator statistics
    tensor_peak_range_bytes: int | None
    processes: int


def measure_memory(
    onnx_path: str | os.PathLike[str], *, threads: int = 1, processes: int = _kit_runner.MEMORY_PROCESSES
) -> MemoryMeasurement:
    samples = _kit_runner.memory_samples(onnx_path, threads=threads, processes=processes)
    rss = [int(s["peak_bytes"]) for s in samples]  # type: ignore[arg-type]
    tensors = [int(t) for s in samples if (t := s["tensor_peak_bytes"]) is not None]
    recorded = len(tensors) == len(samples)
    return MemoryMeasurement(
        peak_bytes=int(_kit_runner.mean_of(samples, "peak_bytes")),  # type: ignore[arg-type]
        peak_range_bytes=max(rss) - min(rss),
        tensor_peak_bytes=_kit_runner.mean_of(samples, "tensor_peak_bytes"),
        tensor_peak_range_bytes=max(tensors) - min(tensors) if recorded else None,
        processes=processes,
    )


def measure_peak_bytes(
    onnx_path: str | os.PathLike[str], *, threads: int = 1, processes: int = _kit_runner.MEMORY_PROCESSES
) -> int:
    """Resident-memory rise from loading and running the model, mean over fresh processes
    (ONNX Runtime's own session overhead included: see ``measure_session_peak_bytes``)."""
    return measure_memory(onnx_path, threads=threads, processes=processes).peak_bytes


def measure_session_peak_bytes(*, threads: int = 1, processes: int = _kit_runner.MEMORY_PROCESSES) -> int:
    """``measure_peak_bytes`` of a one-node model: what any session costs before the model's own
    weights and activations (the baseline a device profile's peak predictions start from)."""
    import onnx

    from paretone.runtime._session import empty_model

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "empty.onnx"
        onnx.save(empty_model(), str(path))
        return measure_peak_bytes(path, threads=threads, processes=processes)
