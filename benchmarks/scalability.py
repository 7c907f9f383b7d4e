"""Where one search driver stops keeping a cluster busy: trials whose fine-tuning is a 1-second sleep.

    python benchmarks/scalability.py            # 1, 8, 32 and 64 workers, 4 trials per worker
    python benchmarks/scalability.py --quick    # 1 and 8 workers (< 3 minutes)

In the style of Ray Tune's own scalability tests: the real driver (Optuna ask and tell on the
default journal storage, screening by the latency and memory predictors, warm starts, heartbeats)
with a local Ray of many small actors whose ``fine_tune`` sleeps for one second and returns a
result, so the driver's own costs are all that varies. Per worker count: wall seconds against the
ideal (trials x 1 s / workers), worker utilisation, the driver's seconds per candidate (ask,
predict, tell, storage), and the seconds until the first result (actor start-up). On this 2-core
machine 64 actors share two cores with the driver, so the large counts measure a loaded driver: an
upper bound of its cost.
The teacher is the first one found of --teacher, runs/bench-search/*/teacher*, runs/teacher-ast-default;
the device profile runs/devices/local (calibrated if absent).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _teachers import existing_teacher  # benchmarks/, run as scripts
from rich.console import Console
from rich.table import Table

from paretone._io import write_json
from paretone._version import __version__
from paretone.hw_models import LatencyModel, MemoryModel
from paretone.search import Budget, Driver, SearchSettings, WorkerSetup, default_storage, ensure_profile

SLEEP_S = 1.0
ACTOR_MEMORY_BYTES = 64 * 2**20
TRIALS_PER_WORKER = 4


@dataclass(frozen=True)
class SleepResult:
    """The fields of ``evaluators.TrialResult`` (what the driver stores), without importing torch
    into 64 actor processes (about 300 MB each: the first full run ran this machine out of memory)."""

    score: float
    epochs_run: int
    best_epoch: int
    params: int
    macs: int
    artifacts: str
    seconds: float


def _sleep_worker(setup: WorkerSetup) -> Any:
    import ray

    @ray.remote(num_cpus=1, max_restarts=0)
    class SleepWorker:  # defined here, so Ray ships it by value with only json, time and zlib
        def fine_tune(self, recipe: dict[str, Any], epochs: int, out_dir: str) -> SleepResult:
            time.sleep(SLEEP_S)
            score = zlib.crc32(json.dumps(recipe, sort_keys=True).encode()) % 1000 / 1000  # per recipe
            return SleepResult(score, epochs, epochs, 0, 0, out_dir, SLEEP_S)

    return SleepWorker.options(memory=ACTOR_MEMORY_BYTES).remote()


def _run(teacher: Path, tmp: Path, workers: int, profile) -> dict[str, Any]:
    trials = max(8, TRIALS_PER_WORKER * workers)
    settings = SearchSettings(
        teacher=teacher,
        study=f"scale-{workers}",
        storage=default_storage(f"scale-{workers}", tmp / "runs"),
        trials=trials,
        budget=Budget(latency_fraction=0.5),
        workers=workers,
        sampler="nsga2",
        epochs=1,
        runs_dir=tmp / "runs",
        worker_memory_mb=ACTOR_MEMORY_BYTES / 2**20,
    )
    first: list[float] = []
    started = time.perf_counter()

    def status(progress) -> None:
        if progress.finished and not first:
            first.append(time.perf_counter() - started)

    driver = Driver(
        settings,
        latency=LatencyModel(profile),
        memory=MemoryModel(profile),
        device="local",
        status=status,
        worker_factory=_sleep_worker,
    )
    summary = driver.run()
    wall = time.perf_counter() - started
    told = summary.fine_tuned + summary.screened + summary.failed
    steady = wall - (first[0] if first else 0.0) + SLEEP_S  # from the first start of a trial on
    return {
        "workers": workers,
        "trials": summary.fine_tuned,
        "screened": summary.screened,
        "failed": summary.failed,
        "wall_seconds": round(wall, 2),
        "ideal_seconds": trials * SLEEP_S / workers,
        "first_result_seconds": round(first[0], 2) if first else None,
        "utilisation": trials * SLEEP_S / (wall * workers),
        "steady_utilisation": min(1.0, trials * SLEEP_S / (steady * workers)),
        "driver_seconds": round(summary.driver_seconds, 3),
        "driver_seconds_per_candidate": summary.driver_seconds / max(told, 1),
        "driver_seconds_per_trial": summary.driver_seconds / max(summary.fine_tuned, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--teacher", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    out = args.out or Path(f"benchmarks/results/scalability{'-quick' if args.quick else ''}.json")
    counts = (1, 8) if args.quick else (1, 8, 32, 64)
    teacher = existing_teacher(args.teacher)
    console = Console(width=150)
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        tmp = Path(work)
        probe = SearchSettings(teacher=teacher, study="probe", storage=f"sqlite:///{tmp / 'p.db'}")
        profile = ensure_profile(probe, device="local", profile_dir="runs/devices")
        for workers in counts:  # written after each count: a larger one may not finish
            rows.append(_run(teacher, tmp, workers, profile))
            console.print(rows[-1])
            payload = {
                "benchmark": "scalability",
                "paretone_version": __version__,
                "quick": args.quick,
                "teacher": str(teacher),
                "sleep_seconds": SLEEP_S,
                "rows": rows,
                "device": profile.fingerprint,
                "seconds": round(time.perf_counter() - started, 1),
            }
            write_json(out, payload)
    table = Table(title=f"driver scalability: trials are {SLEEP_S:g}-second sleeps")
    columns = [
        "workers",
        "trials",
        "wall s",
        "ideal s",
        "first result s",
        "utilisation",
        "steady",
        "driver s/cand",
    ]
    for column in columns:
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            str(r["workers"]),
            str(r["trials"]),
            f"{r['wall_seconds']:.1f}",
            f"{r['ideal_seconds']:.1f}",
            f"{r['first_result_seconds']}",
            f"{r['utilisation']:.0%}",
            f"{r['steady_utilisation']:.0%}",
            f"{r['driver_seconds_per_candidate']:.3f}",
        )
    console.print(table)
    console.print(f"wrote {out} in {payload['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
