"""What sharing the decoded audio through Ray's object store saves each search worker.

    python benchmarks/shared_audio.py            # 2 workers, 3 interleaved repetitions
    python benchmarks/shared_audio.py --workers 4 --repeats 5

The search's driver decodes the teacher's splits once and puts them in Ray's object store as numpy
arrays; every worker of a node maps that one copy instead of decoding its own (issue 17, item 6).
Per repetition, alternating the two ways: start the workers (real ``TrialWorker`` actors on a local
Ray), fine-tune one full-size candidate for one epoch on each (so every training and validation
clip has been read), then read each worker's memory from ``/proc/PID/smaps_rollup``: its private
bytes (USS, what it alone holds) and its proportional share (PSS: shared pages divided among the
processes that map them), and the seconds from asking for the workers to the first of them ready.
Reported: medians over repetitions, and the ratios shared / decoding measured side by side.
The teacher is the first one found of --teacher, runs/bench-search/*/teacher*, runs/teacher-ast-default.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _teachers import existing_teacher  # benchmarks/, run as scripts
from rich.console import Console
from rich.table import Table

from paretone._io import write_json
from paretone._version import __version__
from paretone.compress import Recipe, teacher_logits
from paretone.evaluators import load_context
from paretone.search import WorkerSetup
from paretone.search._workers import start_ray, start_worker

MODES = ("decoding", "shared")


def _memory(pid: int) -> dict[str, int]:
    """USS and PSS of one process, in bytes (smaps_rollup gives kB)."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0]) * 1024
    return {"uss_bytes": fields["Private_Clean"] + fields["Private_Dirty"], "pss_bytes": fields["Pss"]}


def _repetition(setup: WorkerSetup, workers: int, out: Path) -> dict[str, Any]:
    import ray

    started = time.perf_counter()
    handles = [start_worker(setup) for _ in range(workers)]
    ray.wait([h.pid.remote() for h in handles], num_returns=1)
    first_ready_s = time.perf_counter() - started
    pids = ray.get([h.pid.remote() for h in handles])
    results = ray.get(
        [h.fine_tune.remote(Recipe().to_dict(), 1, str(out / f"w{i}")) for i, h in enumerate(handles)]
    )
    memory = [_memory(pid) for pid in pids]
    for handle in handles:
        ray.kill(handle)
    return {
        "first_ready_s": first_ready_s,
        "uss_bytes": statistics.median(m["uss_bytes"] for m in memory),
        "pss_bytes": statistics.median(m["pss_bytes"] for m in memory),
        "scores": [r.score for r in results],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--teacher", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/shared-audio.json"))
    args = parser.parse_args(argv)
    import ray

    teacher = existing_teacher(args.teacher)
    started = time.perf_counter()
    start_ray(None, args.workers)
    decode_started = time.perf_counter()
    context = load_context(teacher)
    decode_s = time.perf_counter() - decode_started
    put_started = time.perf_counter()
    decoded = context.decoded()
    audio = ray.put(decoded)
    put_s = time.perf_counter() - put_started
    audio_bytes = sum(a.nbytes for a in decoded.arrays.values())
    teacher_logits(context.teacher, context.sets.train, cache_dir=context.cache_dir)  # cached for all runs
    setups = {
        "decoding": WorkerSetup(str(teacher), None, None),
        "shared": WorkerSetup(str(teacher), None, None, audio=audio),
    }
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory() as work:
        for repeat in range(args.repeats):
            for mode in MODES if repeat % 2 == 0 else MODES[::-1]:  # interleaved, order alternating
                runs[mode].append(_repetition(setups[mode], args.workers, Path(work) / f"{mode}-{repeat}"))
    ray.shutdown()
    summary = {
        mode: {
            key: statistics.median(r[key] for r in runs[mode])
            for key in ("first_ready_s", "uss_bytes", "pss_bytes")
        }
        for mode in MODES
    }
    ratios = {
        key: statistics.median(s[key] / d[key] for s, d in zip(runs["shared"], runs["decoding"], strict=True))
        for key in ("first_ready_s", "uss_bytes", "pss_bytes")
    }
    payload = {
        "benchmark": "shared_audio",
        "paretone_version": __version__,
        "teacher": str(teacher),
        "workers": args.workers,
        "repeats": args.repeats,
        "audio_bytes": audio_bytes,
        "driver_decode_s": decode_s,
        "driver_put_s": put_s,
        "summary": summary,
        "shared_over_decoding": ratios,  # median over repetitions of the side-by-side ratios
        "runs": runs,
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_json(args.out, payload)
    console = Console(width=140)
    table = Table(
        title=f"{args.workers} workers, audio {audio_bytes / 1e6:.0f} MB, medians of {args.repeats}"
    )
    for column in ("mode", "first worker ready s", "USS per worker MB", "PSS per worker MB"):
        table.add_column(column, justify="right")
    for mode in MODES:
        s = summary[mode]
        table.add_row(
            mode, f"{s['first_ready_s']:.1f}", f"{s['uss_bytes'] / 1e6:.0f}", f"{s['pss_bytes'] / 1e6:.0f}"
        )
    table.add_row(
        "shared / decoding", *(f"{ratios[k]:.2f}" for k in ("first_ready_s", "uss_bytes", "pss_bytes"))
    )
    console.print(table)
    console.print(
        f"driver: decode {decode_s:.1f} s, put {put_s:.2f} s; wrote {args.out} in {payload['seconds']:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
