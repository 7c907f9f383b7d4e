"""Latency predictions when the device changes speed: raw, speed-corrected by the probe, and refit.

    python benchmarks/speed_probe.py            # 16 fitting models, 40 held-out, campaigns 10 min apart
    python benchmarks/speed_probe.py --quick    # 10 fitting models, 12 held-out, 1 min apart (< 10 min)

1. Calibrates a fresh device profile for the default AST teacher (`paretone calibrate`: kernels,
   fitting models, and the speed probe's reference times).
2. The probe's own cost and its run-to-run spread: probed 5 times back to back.
3. Four validation campaigns against the same profile, the second started at least
   --gap-minutes after the first started: "quiet" as the machine is; "load" with a bounded
   background process (numpy matrix products, one thread) on the other core, started and stopped
   here, to change the speed state; "phases", a process per core loaded for a minute and idle for
   the next, so the speed changes inside the campaign (what a probe before and after cannot
   correct, and the anchors timed inside every pass are for); and "bandwidth", a process on the
   other core copying 256 MB arrays, which evicts the shared cache and contends for memory
   bandwidth (slowing kernels unevenly, by how much they read from memory). ``--campaigns`` runs a
   subset, in the order given. Each campaign (`paretone calibrate --validate`) measures the same
   held-out compressed models (interleaved passes, 1 thread), probes just before and just after,
   times the probe's anchors 3 times inside every pass (the in-pass anchored figures), and
   re-measures 8 calibration models for the refit figures.
Writes JSON to --out and prints one table per campaign.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from paretone._io import write_json
from paretone._version import __version__
from paretone.hw_models import DeviceProfile, ErrorStats, calibrate, probe_speed, validate
from paretone.models import ASTConfig, build_model

LOAD = """
import sys, time, numpy as np
end, period, kind = time.time() + float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]  # period 0: always on
if kind == "compute":  # matrix products inside the core's own caches
    a = np.random.default_rng(0).standard_normal((384, 384)).astype(np.float32)
else:  # "memory": copies of 256 MB, which evict the shared cache and contend for memory bandwidth
    a, b = np.ones(2**26, np.float32), np.zeros(2**26, np.float32)
while time.time() < end:
    if period and int(time.time() // period) % 2:
        time.sleep(0.05)  # an off phase
        continue
    if kind == "compute":
        a = np.tanh(a @ a.T / 384.0)
    else:
        np.copyto(b, a)
        a, b = b, a
"""
PHASE_S = 60  # the "phases" campaign: every core loaded for a minute, then idle for a minute


# campaign -> (load processes, 0 or the seconds a load phase lasts, "compute" or "memory" load)
CAMPAIGNS: dict[str, tuple[int, float, str]] = {
    "quiet": (0, 0, "compute"),
    "load": (1, 0, "compute"),
    "phases": (os.cpu_count() or 2, PHASE_S, "compute"),
    "bandwidth": (1, 0, "memory"),
}


def _loaded(processes: int, period_s: float, kind: str) -> list[subprocess.Popen]:
    """Bounded numpy load processes, one thread each (never outliving a crashed benchmark by more
    than an hour)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    command = [sys.executable, "-c", LOAD, "3600", str(period_s), kind]
    return [subprocess.Popen(command, env=env) for _ in range(processes)]


def _stats(s: ErrorStats | None) -> dict[str, float] | None:
    return None if s is None else {k: round(v, 4) for k, v in vars(s).items()}


def _campaign(profile: DeviceProfile, folder: Path, teacher: Any, held_out: int, passes: int) -> dict:
    report = validate(profile, teacher, models=held_out, passes=passes, memory=False, probe_dir=folder)
    return {
        "held_out_models": report.models,
        "seconds": round(report.seconds, 1),
        "drift": report.drift,
        "speed_factors": report.speed["factors"] if report.speed else None,
        "probe_seconds": report.speed["seconds"] if report.speed else None,
        "raw": _stats(report.latency),
        "speed_corrected": _stats(report.latency_speed_corrected),
        "anchor_corrected": _stats(report.latency_anchor_corrected),
        "anchored_in_pass": _stats(report.latency_anchored_in_pass),
        "anchor_factor": report.speed["anchor_factor"] if report.speed else None,
        "refit": _stats(report.latency_after_refit),
        "within_interval": report.within_interval,
        "raw_within_10pct": report.latency.within_10pct,
        "speed_corrected_within_10pct": (
            None if report.latency_speed_corrected is None else report.latency_speed_corrected.within_10pct
        ),
        "anchor_corrected_within_10pct": (
            None if report.latency_anchor_corrected is None else report.latency_anchor_corrected.within_10pct
        ),
        "anchored_in_pass_within_10pct": (
            None if report.latency_anchored_in_pass is None else report.latency_anchored_in_pass.within_10pct
        ),
        "refit_within_10pct": (
            None if report.latency_after_refit is None else report.latency_after_refit.within_10pct
        ),
        "rows": report.rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--gap-minutes", type=float, default=None, help="default: 10 (quick: 1)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--campaigns", default=",".join(CAMPAIGNS), help=f"comma-separated, of {', '.join(CAMPAIGNS)}"
    )
    args = parser.parse_args(argv)
    chosen = args.campaigns.split(",")
    if unknown := sorted(set(chosen) - set(CAMPAIGNS)):
        parser.error(f"unknown campaign(s) {', '.join(unknown)}; choose from {', '.join(CAMPAIGNS)}")
    name = "speed-probe-quick.json" if args.quick else "speed-probe.json"
    out = args.out or Path("benchmarks/results") / name
    gap_s = 60 * (args.gap_minutes if args.gap_minutes is not None else (1 if args.quick else 10))
    fit_models, held_out, passes = (10, 12, 3) if args.quick else (16, 40, 5)
    torch.manual_seed(0)
    console = Console(width=150)
    teacher = build_model(ASTConfig.uniform(num_classes=10)).eval()
    started = time.perf_counter()

    with tempfile.TemporaryDirectory() as tmp:
        summary = calibrate(
            device="bench", profile_dir=tmp, teacher=teacher, models=fit_models, passes=passes
        )
        profile = DeviceProfile.load(summary.profile)
        folder = summary.profile.parent
        console.print(f"calibrated: {len(profile.kernels)} kernels, {len(profile.probe)} sentinels")

        probes = [probe_speed(profile, folder) for _ in range(5)]
        overall = [p.overall for p in probes]
        probe = {
            "sentinels": [s.group for s in profile.probe],
            "anchors": [a.name for a in profile.anchors],
            "anchor_factor_runs": [p.anchor_factor for p in probes],
            "seconds_median": statistics.median(p.seconds for p in probes),
            "overall_factor_runs": overall,
            "overall_factor_spread": (max(overall) - min(overall)) / statistics.median(overall),
            "per_group_spread_median": statistics.median(
                statistics.median(p.spread.values()) for p in probes
            ),
        }

        first_started, campaigns = time.perf_counter(), {}
        for name in chosen:
            wait = gap_s - (time.perf_counter() - first_started)
            if len(campaigns) == 1 and wait > 0:
                console.print(f"waiting {wait:.0f} s before the second campaign")
                time.sleep(wait)
            processes, period_s, kind = CAMPAIGNS[name]
            load = _loaded(processes, period_s, kind)
            try:
                time.sleep(2 if load else 0)
                campaigns[name] = _campaign(profile, folder, teacher, held_out, passes)
            finally:
                for p in load:
                    p.kill()
                    p.wait()

    result = {
        "paretone_version": __version__,
        "quick": args.quick,
        "device": profile.fingerprint,
        "seconds": round(time.perf_counter() - started, 1),
        "calibration": {"kernels": len(profile.kernels), "whole_models": len(profile.models),
                        "seconds": round(summary.seconds, 1), "passes": passes},
        "gap_seconds": gap_s,
        "probe": probe,
        "campaigns": campaigns,
        "speed_corrected_within_10pct": {k: c["speed_corrected_within_10pct"] for k, c in campaigns.items()},
        "raw_within_10pct": {k: c["raw_within_10pct"] for k, c in campaigns.items()},
        "refit_within_10pct": {k: c["refit_within_10pct"] for k, c in campaigns.items()},
        "anchor_corrected_within_10pct": {
            k: c["anchor_corrected_within_10pct"] for k, c in campaigns.items()
        },
        "anchored_in_pass_within_10pct": {
            k: c["anchored_in_pass_within_10pct"] for k, c in campaigns.items()
        },
    }  # fmt: skip
    write_json(out, result)

    for name, c in campaigns.items():
        table = Table(title=f"{name}: {c['held_out_models']} held-out students, drift {c['drift']:.2f}x")
        for column in ("prediction", "within 5%", "within 10%", "RMSPE", "worst"):
            table.add_column(column, justify="right")
        for label in ("raw", "speed_corrected", "anchor_corrected", "anchored_in_pass", "refit"):
            s = c[label]
            if s is not None:
                table.add_row(
                    label, f"{s['within_5pct']:.0%}", f"{s['within_10pct']:.0%}", f"{s['rmspe_pct']:.1f}%",
                    f"{s['worst_pct']:+.1f}%",
                )  # fmt: skip
        console.print(table)
    console.print(
        f"probe: {len(probe['sentinels'])} sentinels in {probe['seconds_median']:.2f} s, overall factor "
        f"spread {probe['overall_factor_spread']:.1%} over 5 runs; wrote {out} ({result['seconds']:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
