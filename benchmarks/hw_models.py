"""Hardware models on this machine: calibration time, held-out prediction accuracy, naive proxies.

    python benchmarks/hw_models.py            # 16 calibration models, 40 held-out (~15 min)
    python benchmarks/hw_models.py --quick    # 6 calibration models, 12 held-out (< 10 min)

A. Calibrates a fresh device profile for the default AST teacher (every kernel compression can make
of it, plus random compressed whole models for the per-model term), then exports held-out random
students (other seeds), measures their latency (interleaved passes, one thread, with 8 calibration
models re-measured beside them for drift and the refit figures, and the speed probe's anchors
inside every pass) and memory (fresh processes: the resident-memory rise and ONNX Runtime's own
allocator peak, each with its range between the processes), and compares with the calibrated
predictions and with two naive proxies: MACs scaled to milliseconds and parameters to bytes.
B. Measures kernels, fitting models and the same held-out models in one interleaved campaign and
compares again: this machine (a shared VM) switches between speed states for minutes at a time,
and int8 / GELU kernels slow down by up to 1.7x while fp32 GEMMs do not, so A mixes predictor error
with the machine's drift (reported, with the figures after a refit on re-measured models).
Weights are untrained: latency and size do not depend on their values. Writes JSON to --out.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from paretone._io import write_json
from paretone._version import __version__
from paretone.hw_models import (
    VALIDATION_SEED,
    DeviceProfile,
    calibrate,
    calibration_kernels,
    compare,
    merge_results,
    random_models,
    validate,
    write_kit,
)
from paretone.models import ASTConfig, build_model
from paretone.runtime import MEMORY_PROCESSES, run_kit_in_fresh_process


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/hw_models.json"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    console = Console(width=150)
    teacher = build_model(ASTConfig.uniform(num_classes=10)).eval()
    fit_models, held_out, passes = (6, 12, 3) if args.quick else (16, 40, 5)

    def show(stage: str, done: int, total: int) -> None:
        if done == total or done % 50 == 0:
            console.print(f"{time.strftime('%X')} {stage}: {done}/{total}")

    with tempfile.TemporaryDirectory() as tmp:
        # A. the product path: `paretone calibrate`, later `paretone calibrate --validate`
        summary = calibrate(
            device="bench", profile_dir=tmp, teacher=teacher, models=fit_models, passes=passes, progress=show
        )
        profile = DeviceProfile.load(summary.profile)
        report = validate(
            profile, teacher, models=held_out, passes=passes, probe_dir=summary.profile.parent, progress=show
        )
        # B. one measurement campaign: kernels, fitting and held-out models timed in the same
        # interleaved passes, so a change of the machine's speed state cannot separate them
        started = time.perf_counter()
        kit = write_kit(
            Path(tmp) / "campaign",
            kernels=calibration_kernels(teacher.config),
            teacher=teacher,
            models=random_models(teacher, fit_models, seed=0, prefix="calibration")
            + random_models(teacher, held_out, seed=VALIDATION_SEED, prefix="validation"),
            threads=1,
            passes=passes,
            progress=show,
        )
        results = run_kit_in_fresh_process(
            kit, kit / "results.json", progress=lambda d, t: show("campaign", d, t)
        )
        campaign = merge_results(None, "campaign", results, "campaign")
        tested = [m for name, m in campaign.models.items() if name.startswith("validation")]
        for m in tested:
            del campaign.models[m.name]
        same_session = compare(campaign, tested, seconds=time.perf_counter() - started)

    def stats(s: object) -> dict | None:
        return None if s is None else {k: round(v, 4) for k, v in vars(s).items()}

    result = {
        "paretone_version": __version__,
        "quick": args.quick,
        "device": profile.fingerprint,
        "calibration": {
            "seconds": round(summary.seconds, 1),
            "kernels": summary.kernels_total,
            "whole_models": summary.models_total,
            "passes": passes,
        },
        "validation": {
            "held_out_models": report.models,
            "seconds": round(report.seconds, 1),
            "coverage": report.coverage,
            "latency": stats(report.latency),
            "latency_macs_proxy": stats(report.macs_proxy_latency),
            "model_bytes": stats(report.model_bytes),
            "model_bytes_params_proxy": stats(report.params_proxy_bytes),
            "peak_bytes": stats(report.peak_bytes),
            "tensor_peak_bytes": stats(report.tensor_peak_bytes),
            "memory_spread": None if report.memory_spread is None else vars(report.memory_spread),
            "drift": report.drift,
            "latency_after_refit": stats(report.latency_after_refit),
            "latency_speed_corrected": stats(report.latency_speed_corrected),
            "latency_anchored_in_pass": stats(report.latency_anchored_in_pass),
            "within_interval": report.within_interval,
            "worst_latency": report.worst(3),
        },
        "same_session": {
            "held_out_models": same_session.models,
            "seconds": round(same_session.seconds, 1),
            "latency": stats(same_session.latency),
            "latency_macs_proxy": stats(same_session.macs_proxy_latency),
            "model_bytes": stats(same_session.model_bytes),
            "model_bytes_params_proxy": stats(same_session.params_proxy_bytes),
            "peak_bytes": stats(same_session.peak_bytes),
            "tensor_peak_bytes": stats(same_session.tensor_peak_bytes),
            "worst_latency": same_session.worst(3),
            "rows": same_session.rows,
        },
        "rows": report.rows,
        "method": "ONNX Runtime CPU, 1 thread, batch 1; latency = median of the quietest of "
        f"{passes} interleaved passes of 40 runs; peak = RSS rise over an empty session, mean of "
        f"{MEMORY_PROCESSES} fresh processes (address-space layouts); tensor peak = ONNX Runtime's allocator "
        "peak (mem_in_use_peak in its profile) over an empty session, mean of the same processes",
    }
    write_json(args.out, result)

    for title, r in (("A. calibrate, then validate", report), ("B. one measurement campaign", same_session)):
        table = Table(title=f"{title}: {r.models} held-out students ({args.out})")
        for column in ("prediction", "within 5%", "within 10%", "RMSPE", "worst"):
            table.add_column(column, justify="right")
        for name, s in (
            ("latency, calibrated", r.latency),
            ("latency, speed-corrected by the probe", r.latency_speed_corrected),
            ("latency, anchors inside every pass", r.latency_anchored_in_pass),
            ("latency, after refit on re-measured models", r.latency_after_refit),
            ("latency, MACs proxy", r.macs_proxy_latency),
            ("file bytes, calibrated", r.model_bytes),
            ("file bytes, params proxy", r.params_proxy_bytes),
            ("peak memory, calibrated", r.peak_bytes),
            ("ONNX Runtime tensor peak, calibrated", r.tensor_peak_bytes),
        ):
            if s is not None:
                row = (
                    f"{s.within_5pct:.0%}",
                    f"{s.within_10pct:.0%}",
                    f"{s.rmspe_pct:.1f}%",
                    f"{s.worst_pct:+.1f}%",
                )
                table.add_row(name, *row)
        console.print(table)
    if report.memory_spread is not None:
        console.print(f"memory measurements' own range between fresh processes: {report.memory_spread}")
    if report.drift is not None:
        console.print(f"drift: calibration models now run at {report.drift:.2f}x their profiled latency")
    console.print(
        f"calibration: {summary.kernels_total} kernels + {summary.models_total} whole models in "
        f"{summary.seconds:.0f} s; validation {report.seconds:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
