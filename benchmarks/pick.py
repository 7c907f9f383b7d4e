"""From teacher to a deployable model at 25% of the teacher's latency, with the evidence.

    python benchmarks/pick.py            # 16 trials x 2 epochs, 10 final epochs (~20 min)
    python benchmarks/pick.py --quick    # 6 trials x 1 epoch, 3 final epochs (< 10 minutes)

1. Measures the fp32 teacher (runs/teacher-ast-default, trained if absent) on this machine; the
   budget is 25% of that measured latency.
2. Searches (NSGA-II, 2 Ray workers) at 25% of the teacher's *predicted* latency, the same fraction
   in the units the search optimises, and a file of at most 10% of the teacher's.
3. `paretone pick` at the measured budget: final fine-tuning, export with real kernels, latency
   measured in a fresh process interleaved with the fp32 teacher and `quantize_dynamic(teacher)`,
   test accuracy of all three, model card.
4. Checks the targets: measured latency within budget, test accuracy within 1 point of the
   teacher, file at most 10% of the teacher's, faster than `quantize_dynamic(teacher)` at equal or
   better accuracy. Writes JSON to --out and prints a table.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from paretone._io import write_json
from paretone._version import __version__
from paretone.compress import quantize_dynamic_baseline
from paretone.errors import ConfigError
from paretone.hw_models import LatencyModel
from paretone.models import load_model, model_kernels
from paretone.runtime import measure_latencies_isolated
from paretone.search import Budget, SearchSettings, candidates, ensure_profile, load_study, run_search
from paretone.ship import PICKED, TEACHER_FP32, TEACHER_INT8, PickReport, PickSettings, pick

TEACHER = Path("runs/teacher-ast-default")
FRACTION = 0.25  # of the teacher's latency
SIZE_FRACTION = 0.10  # of the teacher's file


def _targets(report: PickReport, budget_ms: float) -> dict[str, bool]:
    picked, teacher, int8 = report.model(PICKED), report.model(TEACHER_FP32), report.model(TEACHER_INT8)
    return {
        "measured_within_budget": picked.measured_latency_ms <= budget_ms,
        "within_budget_of_teacher_measured_same_run": picked.measured_latency_ms
        <= FRACTION * teacher.measured_latency_ms,
        "test_accuracy_within_1_point": picked.test_score >= teacher.test_score - 0.01,
        "file_at_most_10_percent": picked.file_bytes <= 0.10 * teacher.file_bytes,
        "beats_quantize_dynamic": picked.measured_latency_ms < int8.measured_latency_ms
        and picked.test_score >= int8.test_score,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/pick.json"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    trials, epochs, final_epochs = (6, 1, 3) if args.quick else (16, 2, 10)
    console = Console()
    started = time.perf_counter()
    if not (TEACHER / "config.json").is_file():
        console.print(f"training the teacher into {TEACHER}")
        subprocess.run([sys.executable, "-m", "paretone.cli", "train", "--out", str(TEACHER)], check=True)
    teacher = load_model(TEACHER).model

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        teacher_onnx = TEACHER / "model.onnx"
        int8 = quantize_dynamic_baseline(teacher_onnx, work / "int8.onnx")
        before = measure_latencies_isolated([teacher_onnx, int8])
        budget_ms = round(FRACTION * before[0].latency_ms, 4)
        size_mb = round(SIZE_FRACTION * teacher_onnx.stat().st_size / 1e6, 4)
        console.print(
            f"teacher measured {before[0].latency_ms:.3f} ms -> budget {budget_ms} ms, {size_mb} MB"
        )

        settings = SearchSettings(
            teacher=TEACHER,
            study="bench-pick",
            storage=f"sqlite:///{work / 'study.db'}",
            trials=trials,
            budget=Budget(latency_fraction=FRACTION, size_mb=size_mb),
            workers=2,
            sampler="nsga2",
            seed=args.seed,
            epochs=epochs,
            runs_dir=work / "runs",
        )
        profile = ensure_profile(settings, device="local", profile_dir=Path("runs/devices"))
        teacher_predicted_ms = LatencyModel(profile).predict(model_kernels(teacher.config)).latency_ms
        try:
            summary = run_search(settings, device="local", profile_dir=Path("runs/devices"))
        except ConfigError as exc:
            console.print(f"search refused: {exc}")
            return 2
        console.print(
            f"search: {summary.fine_tuned} fine-tuned, {summary.screened} screened, front {summary.front}, "
            f"{summary.seconds:.0f} s"
        )
        pool = candidates(load_study(settings.study, settings.storage))
        pick_settings = PickSettings(
            study=settings.study,
            storage=settings.storage,
            latency_limit_ms=budget_ms,
            size_budget_mb=size_mb,
            out=work / "pick",
            final_epochs=final_epochs,
        )
        error = None
        try:
            report = pick(pick_settings, progress=console.print)
        except ConfigError as exc:
            report, error = None, str(exc)
        card = (work / "pick" / "MODEL_CARD.md").read_text() if report is not None else None

    result = {
        "benchmark": "pick",
        "paretone_version": __version__,
        "quick": args.quick,
        "settings": {"trials": trials, "epochs": epochs, "final_epochs": final_epochs, "workers": 2},
        "teacher_measured_before_ms": before[0].latency_ms,
        "quantize_dynamic_measured_before_ms": before[1].latency_ms,
        "teacher_predicted_ms": teacher_predicted_ms,
        "budget_ms": budget_ms,
        "size_budget_mb": size_mb,
        "search_budget_ms": summary.budget.latency_ms,
        "search": {
            "fine_tuned": summary.fine_tuned,
            "screened": summary.screened,
            "failed": summary.failed,
            "front": summary.front,
            "seconds": round(summary.seconds, 1),
            "best_validation_accuracy": max((c.score for c in pool if c.feasible), default=None),
        },
        "pick": report.to_dict() if report is not None else {"error": error},
        "targets": _targets(report, budget_ms) if report is not None else {},
        "model_card": card,
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_json(args.out, result)
    if report is None:
        console.print(f"pick failed: {error}")
        return 1
    table = Table(title=f"picked trial {report.trial} at budget {budget_ms} ms (25% of the teacher)")
    for column in ("model", "test accuracy", "measured ms", "vs teacher", "predicted ms", "file MB"):
        table.add_column(column, justify="left" if column == "model" else "right")
    teacher_ms = report.model(TEACHER_FP32).measured_latency_ms
    for row in report.models:
        table.add_row(
            row.name,
            f"{row.test_score:.2%}",
            f"{row.measured_latency_ms:.3f}",
            f"{row.measured_latency_ms / teacher_ms:.2f}",
            f"{report.predicted_latency_ms:.3f}" if row.name == PICKED else "-",
            f"{row.file_bytes / 1e6:.2f}",
        )
    console.print(table)
    for target, met in result["targets"].items():
        console.print(f"{'met' if met else 'MISSED'}: {target}")
    console.print(f"wrote {args.out} in {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
