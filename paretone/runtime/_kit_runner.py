"""Measure the ONNX models of a paretone calibration kit on this device.

This file is copied verbatim into every kit as ``run_kit.py``, so it must need nothing but the
Python standard library, numpy and onnxruntime (a phone-class or edge device has no torch).
paretone runs this very file in a fresh child process for local calibration: one timing method,
whether the device is this machine or a remote one.

    python run_kit.py [--out results.json]

Re-running continues where it stopped: measured entries in the output file are kept.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

KIT_FORMAT = "paretone.kit/1"
RESULTS_FORMAT = "paretone.kit-results/1"
MANIFEST = "manifest.json"
RUNNER_FILE = "run_kit.py"  # this file, as a kit holds it
# Fresh processes per memory measurement. The resident-memory rise depends on the process's
# address-space layout, which the OS randomises per process (ASLR): the same model's rise takes two
# levels about 1.2 MB apart between processes (with randomisation off, 5 of 6 models within 0.01 MB
# in 7 processes: benchmarks/peak_spread.py). Memory figures are means over this many layouts: a median flips
# between the two levels, a mean moves smoothly with the share of unlucky layouts.
MEMORY_PROCESSES = 7
_CPU_FLAGS = (
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_int8",
    "neon",
    "asimd",
)


def fingerprint(threads: int) -> dict[str, Any]:
    """What makes latency measurements on this device comparable (or not) to others."""
    import onnxruntime as ort

    cpu, flags = "", []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = (part.strip() for part in line.partition(":"))
            if key in ("model name", "Hardware") and not cpu:
                cpu = value
            if key in ("flags", "Features") and not flags:
                flags = sorted(set(value.split()) & set(_CPU_FLAGS))
    except OSError:
        pass
    cpu = cpu or platform.processor() or platform.machine()
    return {
        "cpu": cpu,
        "cpu_flags": flags,
        "logical_cpus": os.cpu_count(),
        "machine": platform.machine(),
        "system": platform.system(),
        "onnxruntime": ort.__version__,
        "threads": threads,
    }


def make_session(
    path: str | os.PathLike[str], threads: int, *, arena: bool = True, profile_prefix: str | None = None
) -> Any:
    """A CPU session with ``threads`` intra-op threads and sequential execution (reproducible);
    ``arena=False`` turns off ONNX Runtime's CPU memory arena (measured in benchmarks/peak_spread.py);
    ``profile_prefix``: ONNX Runtime profiles the session into a JSON file starting so."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    options.enable_cpu_mem_arena = arena
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def random_feeds(session: Any, seed: int = 0) -> dict[str, np.ndarray]:
    """Small noise for every input; symbolic dimensions (the batch) are 1."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in session.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in spec.shape]
        feeds[spec.name] = (rng.standard_normal(shape) * 0.1).astype(np.float32)
    return feeds


def time_runs(path: str | os.PathLike[str], *, threads: int, warmup: int, runs: int) -> list[float]:
    """Milliseconds of ``runs`` single runs of a fresh session, after ``warmup`` untimed ones."""
    session = make_session(path, threads)
    feeds = random_feeds(session)
    for _ in range(warmup):
        session.run(None, feeds)
    times_ms = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feeds)
        times_ms.append((time.perf_counter() - start) * 1e3)
    return times_ms


def summarize(passes_ms: list[list[float]]) -> dict[str, Any]:
    """``latency_ms`` is the median of the quietest pass: on a shared machine slow phases last
    seconds, so passes spread over time and the best one estimate the undisturbed speed."""
    flat = sorted(t for p in passes_ms for t in p)
    deciles = statistics.quantiles(flat, n=10) if len(flat) > 1 else flat * 9
    twentieths = statistics.quantiles(flat, n=20) if len(flat) > 1 else flat * 19
    return {
        "latency_ms": min(statistics.median(p) for p in passes_ms),
        "median_ms": statistics.median(flat),
        "p10_ms": deciles[0],
        "p90_ms": deciles[-1],
        "p95_ms": twentieths[-1],
        "pass_ms": [round(statistics.median(p), 6) for p in passes_ms],
        "repeats": len(flat),
    }


def _memory_bytes(key: str) -> int:
    """VmRSS / VmHWM of this process in bytes (Linux, Android); peak RSS elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _peak_in_this_process(path: str, threads: int, *, arena: bool = True) -> int:
    with contextlib.suppress(OSError):  # reset the high-water mark: importing onnxruntime peaks higher
        Path("/proc/self/clear_refs").write_text("5")
    session_free = _memory_bytes("VmRSS")
    session = make_session(path, threads, arena=arena)
    feeds = random_feeds(session)
    for _ in range(3):
        session.run(None, feeds)
    return max(_memory_bytes("VmHWM"), _memory_bytes("VmRSS")) - session_free


def tensor_peak_bytes(path: str | os.PathLike[str], threads: int) -> int | None:
    """ONNX Runtime's own allocator statistics: the most bytes its CPU allocator held in use for the
    tensors it allocates (activations, and the weights it copies or prepacks; measured below the
    file's size for some models, so not every weight) while loading and running the model once.

    Read from the session's profile (ONNX Runtime 1.31 records ``mem_in_use_peak`` per kernel): it
    counts the model's own allocations only, so it does not move with the process's allocator
    slack or page faults the way the resident-memory rise does. None from an onnxruntime that
    records no allocator statistics (older than 1.31).
    """
    with tempfile.TemporaryDirectory() as tmp:
        session = make_session(path, threads, profile_prefix=os.path.join(tmp, "profile"))
        session.run(None, random_feeds(session))
        events = json.loads(Path(session.end_profiling()).read_text())
    peaks = [int(e["args"]["mem_in_use_peak"]) for e in events if "mem_in_use_peak" in e.get("args", {})]
    return max(peaks) if peaks else None


def memory_samples(
    path: str | os.PathLike[str], *, threads: int, processes: int = MEMORY_PROCESSES
) -> list[dict[str, int | None]]:
    """Per fresh process: ``peak_bytes`` (the resident-memory rise from loading and running the
    model) and ``tensor_peak_bytes`` (``tensor_peak_bytes``, in a second session after it).

    A fresh process per sample, because the allocator keeps what an earlier session freed.
    """
    samples = []
    for _ in range(processes):
        out = subprocess.run(
            [sys.executable, __file__, "--peak-memory", str(path), "--threads", str(threads)],
            check=True,
            capture_output=True,
            text=True,
        )
        samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return samples


def mean_of(samples: list[dict[str, int | None]], key: str) -> int | None:
    """The mean of one quantity over samples (see ``MEMORY_PROCESSES``); None if any sample lacks it."""
    values = [s[key] for s in samples]
    return None if any(v is None for v in values) else round(statistics.fmean(values))  # type: ignore[arg-type]


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def run(
    kit_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Measure every kit entry in interleaved passes (shuffled order each pass), then peak memory.

    Saved after every pass, so an interrupted run resumes at the pass it was in.
    """
    kit_dir, out = Path(kit_dir), Path(out)
    manifest = json.loads((kit_dir / MANIFEST).read_text())
    if manifest.get("format") != KIT_FORMAT:
        raise SystemExit(f"{kit_dir / MANIFEST}: not a {KIT_FORMAT} manifest")
    threads, passes = manifest["threads"], manifest["passes"]
    results = json.loads(out.read_text()) if out.exists() else {}
    if results.get("kit") != manifest["kit"]:
        results = {"format": RESULTS_FORMAT, "kit": manifest["kit"], "raw": {}}
    results["fingerprint"] = fingerprint(threads)
    results["manifest"] = manifest
    raw = results["raw"]
    entries = manifest["entries"]
    memory = [e for e in entries if e.get("memory")]
    total, done = len(entries) * passes + len(memory), 0
    for pass_index in range(passes):
        order = list(entries)
        random.Random(pass_index).shuffle(order)
        for entry in order:
            record = raw.setdefault(entry["id"], {"passes_ms": []})
            if len(record["passes_ms"]) <= pass_index:
                record["passes_ms"].append(
                    time_runs(
                        kit_dir / entry["file"],
                        threads=threads,
                        warmup=manifest["warmup"],
                        runs=manifest["runs"],
                    )
                )
            done += 1
            if progress is not None:
                progress(done, total)
        _write_json(out, results)
    for entry in memory:
        record = raw[entry["id"]]
        if "peak_bytes" not in record:
            samples = memory_samples(kit_dir / entry["file"], threads=threads)
            record["peak_bytes"] = mean_of(samples, "peak_bytes")
            record["tensor_peak_bytes"] = mean_of(samples, "tensor_peak_bytes")
        done += 1
        if progress is not None:
            progress(done, total)
    results["measurements"] = {
        entry["id"]: {
            **summarize(raw[entry["id"]]["passes_ms"]),
            "file_bytes": os.path.getsize(kit_dir / entry["file"]),
            **(
                {k: raw[entry["id"]].get(k) for k in ("peak_bytes", "tensor_peak_bytes")}
                if entry.get("memory")
                else {}
            ),
        }
        for entry in entries
    }
    _write_json(out, results)
    return results


PROGRESS_PREFIX = "progress "  # ``--progress-lines``: "progress DONE TOTAL" per step on stdout


def run_in_fresh_process(
    kit_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """``run`` in a child Python running the kit's own script, as on a remote device.

    The calling process has torch loaded and has just exported the kit: its idle OpenMP threads and
    warm allocator slowed the small whole models by up to 14% against a fresh process, and ``pick``
    measures in a fresh process. RuntimeError with the child's last line if it fails."""
    script = Path(kit_dir) / RUNNER_FILE
    command = [sys.executable, str(script), "--out", str(out), "--progress-lines"]
    with (
        tempfile.TemporaryFile("w+") as errors,  # a file, not a pipe: a full pipe would block the child
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True) as child,
    ):
        for line in child.stdout or ():
            if line.startswith(PROGRESS_PREFIX) and progress is not None:
                done, total = (int(v) for v in line[len(PROGRESS_PREFIX) :].split())
                progress(done, total)
        child.wait()
        errors.seek(0)
        message = errors.read()
    if child.returncode != 0:
        tail = message.strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"measuring the kit failed: {tail[0]}")
    return json.loads(Path(out).read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description="Measure a paretone calibration kit on this device.")
    parser.add_argument("--out", default="results.json", help="results file (extended if it exists)")
    parser.add_argument("--peak-memory", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--progress-lines", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_memory:
        rss = _peak_in_this_process(args.peak_memory, args.threads)  # first: the process still fresh
        tensors = tensor_peak_bytes(args.peak_memory, args.threads)
        print(json.dumps({"peak_bytes": rss, "tensor_peak_bytes": tensors}))
        return

    def show(done: int, total: int) -> None:
        if args.progress_lines:
            print(f"{PROGRESS_PREFIX}{done} {total}", flush=True)
        else:
            print(f"\rmeasured {done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)

    run(Path(__file__).resolve().parent, args.out, progress=show)
    if not args.progress_lines:
        print(f"wrote {args.out}: copy it back and run `paretone calibrate --import {args.out}`")


if __name__ == "__main__":
    main()
