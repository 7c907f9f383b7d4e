"""Does the speed probe read the device, or the search's own workers? Probes idle and beside training.

    python benchmarks/probe_beside_training.py               # 2 workers, 6 rounds (about 6 minutes)
    python benchmarks/probe_beside_training.py --rounds 2

A search on the device probes its speed while its own workers fine-tune on the same cores, so a
probe that read their load as a slower device would screen out candidates that fit. Per round, on a
local Ray with the search's real workers (``TrialWorker`` actors, the decoded audio shared): one
probe with the workers idle, then every worker fine-tunes the full-size teacher recipe for
``--epochs`` epochs while the probe is taken twice (each checked to have run while every worker was
still training), then the next round. Reported, medians over rounds of the side-by-side ratios
busy / idle: the probe's overall factor (the median group's), its whole-model
anchors, each group's factor, and the screening prediction of 40 random students of the teacher
(``LatencyModel.predict(speed=probe)``) with the busy probe over the idle one.

The profile is ``--profile-dir/local`` (calibrated now for the teacher if it holds no probe); the
teacher is the first one found of --teacher, runs/bench-search/*/teacher*, runs/teacher-ast-default.
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
from paretone.hw_models import (
    DeviceProfile,
    LatencyModel,
    SpeedProbe,
    calibrate,
    probe_speed,
    profile_path,
    random_models,
)
from paretone.search import WorkerSetup
from paretone.search._workers import start_ray, start_worker

STUDENTS = 40
BUSY_PROBES_AT_S = (8.0, 8.0)  # seconds to wait before each busy probe: past the workers' loading


def _profile(profile_dir: Path, teacher: Any) -> tuple[DeviceProfile, Path]:
    """The local profile and its folder (calibrated now if it holds no probe)."""
    path = profile_path(profile_dir, "local")
    if not (path.is_file() and DeviceProfile.load(path).probe):
        calibrate(device="local", profile_dir=profile_dir, teacher=teacher, models=8, passes=2)
    return DeviceProfile.load(path), path.parent


def _reading(probe: SpeedProbe) -> dict[str, Any]:
    return {
        "overall": probe.overall,
        "anchor_factor": probe.anchor_factor,
        "factors": probe.factors,
        "seconds": probe.seconds,
    }


def _screening_ms(model: LatencyModel, students: list, probe: SpeedProbe) -> list[float | None]:
    out = []
    for student in students:
        prediction = model.predict(student.kernels, speed=probe)
        out.append(prediction.latency_ms if prediction.complete else None)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--teacher", type=Path, default=None)
    parser.add_argument("--profile-dir", type=Path, default=Path("runs/devices"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument(
        "--epochs", type=int, default=3, help="per fine-tuning: long enough to cover the probes"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/probe-beside-training.json"))
    args = parser.parse_args(argv)
    import ray

    started = time.perf_counter()
    teacher_dir = existing_teacher(args.teacher)
    context = load_context(teacher_dir)
    profile, folder = _profile(args.profile_dir, context.teacher)
    latency = LatencyModel(profile)
    students = random_models(context.teacher, STUDENTS, seed=11, prefix="screened")
    teacher_logits(context.teacher, context.sets.train, cache_dir=context.cache_dir)  # cached: workers train
    start_ray(None, args.workers)
    setup = WorkerSetup(str(teacher_dir), None, None, audio=ray.put(context.decoded()))
    workers = [start_worker(setup) for _ in range(args.workers)]
    ray.get([w.pid.remote() for w in workers])
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as work:
        for r in range(args.rounds):
            idle = probe_speed(profile, folder)
            futures = [
                w.fine_tune.remote(Recipe().to_dict(), args.epochs, str(Path(work) / f"r{r}-w{i}"))
                for i, w in enumerate(workers)
            ]
            busy, training = [], []
            for wait_s in BUSY_PROBES_AT_S:
                time.sleep(wait_s)
                busy.append(probe_speed(profile, folder))
                training.append(not ray.wait(futures, num_returns=1, timeout=0)[0])  # none finished yet
            epoch_s = [res.seconds for res in ray.get(futures)]
            idle_ms, busy_ms = (
                _screening_ms(latency, students, idle),
                _screening_ms(latency, students, busy[-1]),
            )
            rounds.append(
                {
                    "idle": _reading(idle),
                    "busy": [_reading(b) for b in busy],
                    "all_workers_training_after_each_probe": training,
                    "fine_tune_seconds": epoch_s,
                    "student_ratio_busy_over_idle": [
                        b / i
                        for i, b in zip(idle_ms, busy_ms, strict=True)
                        if i is not None and b is not None
                    ],
                }
            )
            print(
                f"round {r}: idle {idle.overall:.3f}x, busy {[round(b.overall, 3) for b in busy]}", flush=True
            )
    for w in workers:
        ray.kill(w)
    ray.shutdown()

    covered = sum(all(x["all_workers_training_after_each_probe"]) for x in rounds)
    if covered < len(rounds):
        print(f"warning: in {len(rounds) - covered} rounds a worker finished before a probe; raise --epochs")

    def ratio(key: str) -> float:
        return statistics.median(b[key] / x["idle"][key] for x in rounds for b in x["busy"])

    groups = sorted(rounds[0]["idle"]["factors"])
    per_group = {
        g: statistics.median(b["factors"][g] / x["idle"]["factors"][g] for x in rounds for b in x["busy"])
        for g in groups
    }
    students_ratio = [s for x in rounds for s in x["student_ratio_busy_over_idle"]]
    summary = {
        "overall_busy_over_idle": ratio("overall"),
        "anchor_busy_over_idle": ratio("anchor_factor") if rounds[0]["idle"]["anchor_factor"] else None,
        "probe_seconds_busy_over_idle": ratio("seconds"),
        "group_busy_over_idle": per_group,
        "group_worst": max(per_group.values(), key=lambda v: abs(v - 1)),
        "students_predicted": len(rounds[0]["student_ratio_busy_over_idle"]),
        "student_busy_over_idle_median": statistics.median(students_ratio) if students_ratio else None,
        "student_within_2pct": (
            sum(abs(s - 1) <= 0.02 for s in students_ratio) / len(students_ratio) if students_ratio else None
        ),
        "rounds_busy_throughout": covered,
        "idle_overall": [x["idle"]["overall"] for x in rounds],
        "busy_overall": [b["overall"] for x in rounds for b in x["busy"]],
    }
    payload = {
        "benchmark": "probe_beside_training",
        "paretone_version": __version__,
        "teacher": str(teacher_dir),
        "workers": args.workers,
        "rounds": rounds,
        "summary": summary,
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_json(args.out, payload)
    console = Console(width=140)
    table = Table(
        title=f"{args.workers} workers fine-tuning beside the probe, medians of {args.rounds} rounds"
    )
    for column in ("reading", "busy / idle"):
        table.add_column(column, justify="right")
    table.add_row("overall (median group)", f"{summary['overall_busy_over_idle']:.3f}")
    if summary["anchor_busy_over_idle"] is not None:
        table.add_row("whole-model anchors", f"{summary['anchor_busy_over_idle']:.3f}")
    table.add_row("worst group", f"{summary['group_worst']:.3f}")
    if summary["student_busy_over_idle_median"] is not None:
        within = f"{summary['student_within_2pct']:.0%} within 2%"
        table.add_row(
            f"{STUDENTS} students' screening prediction",
            f"{summary['student_busy_over_idle_median']:.3f} ({within})",
        )
    table.add_row("probe's own seconds", f"{summary['probe_seconds_busy_over_idle']:.2f}")
    console.print(table)
    console.print(f"wrote {args.out} in {payload['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
