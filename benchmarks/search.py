"""The search on FSDD with the default AST teacher: quality, throughput, budget honesty.

    python benchmarks/search.py            # 3 seeds x 8 trials per method, 1 epoch (~35 min)
    python benchmarks/search.py --quick    # 1 seed x 4 trials, 1 epoch (< 10 minutes)

- Search quality: hypervolume of the feasible front (validation accuracy vs predicted latency,
  reference point: accuracy 0 at the budget) after N fine-tuned trials, for NSGA-II (warm-started
  with the largest uniform candidates that fit), pure random search and the uniform baseline (one
  kept fraction everywhere, int8 everywhere, N fractions spread over the range), same seeds.
- Throughput: trials per hour with 1 and 2 Ray workers on this machine, and the orchestration
  overhead per trial (driver + storage + Ray: wall time x workers minus the workers' fine-tuning
  time, per trial).
- Budget honesty: the most accurate feasible trial of each run is exported with real kernels and
  measured (interleaved passes): measured latency vs predicted and vs the budget.
The teacher is runs/teacher-ast-default (trained by `paretone train` if absent); the device profile
is runs/devices/local (calibrated if absent). Writes JSON to --out and prints a table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
from rich.console import Console
from rich.table import Table

from paretone._io import write_json
from paretone._version import __version__
from paretone.compress import UniformSetting, export_compressed, load_student
from paretone.errors import ConfigError
from paretone.evaluators import load_context
from paretone.hw_models import DeviceProfile, LatencyModel, MemoryModel
from paretone.runtime import measure_latencies
from paretone.search import Budget, Candidate, Driver, SearchSettings, ensure_profile, feasible, study_folder
from paretone.search import hypervolume as front_hypervolume

TEACHER = Path("runs/teacher-ast-default")
BUDGET_FRACTION = 0.75


def hypervolume(trials: list[optuna.trial.FrozenTrial], budget_ms: float) -> float:
    """Area dominated by the feasible (accuracy up, latency down) points, reference (0, budget)."""
    return front_hypervolume([Candidate.from_trial(t) for t in trials if feasible(t)], budget_ms)


def _settings(
    tmp: Path, study: str, sampler: str, seed: int, trials: int, epochs: int, workers: int, warm: bool = True
) -> SearchSettings:
    return SearchSettings(
        teacher=TEACHER,
        study=study,
        storage=f"sqlite:///{tmp / (study + '.db')}",
        trials=trials,
        budget=Budget(latency_fraction=BUDGET_FRACTION),
        workers=workers,
        sampler=sampler,
        seed=seed,
        epochs=epochs,
        runs_dir=tmp / "runs",
        warm_start=warm,
        max_screened_per_trial=500 if warm else 100,  # pure random search rarely fits: bound its time
    )


def _run(settings: SearchSettings, profile: DeviceProfile, uniform: bool, console: Console) -> dict[str, Any]:
    driver = Driver(settings, latency=LatencyModel(profile), memory=MemoryModel(profile), device="local")
    if uniform:  # N uniform w8a8 candidates, spread over the kept fractions that fit the budget
        space = driver.space
        fits = [
            keep
            for keep in (i / 64 for i in range(64, 0, -1))
            if driver.costs.fits(space.recipe(space.uniform(UniformSetting(keep, "w8a8"))), driver.budget)
        ]
        picks = [
            fits[round(i * (len(fits) - 1) / max(settings.trials - 1, 1))] for i in range(settings.trials)
        ]
        for keep in picks:
            driver.study.enqueue_trial(space.uniform(UniformSetting(keep, "w8a8")))
    started = time.perf_counter()
    gave_up = None
    try:
        summary = driver.run()
    except ConfigError as exc:  # the screening limit: no feasible candidate found in time
        gave_up, summary = str(exc), driver.summary(time.perf_counter() - started)
    wall = time.perf_counter() - started
    trials = driver.study.get_trials()
    tuned = [t.user_attrs["result"]["seconds"] for t in trials if t.user_attrs.get("fine_tuned")]
    console.print(
        f"{settings.study}: {summary.fine_tuned} fine-tuned, {summary.screened} screened, "
        f"front {summary.front}, best {summary.best_score}, {wall:.0f} s"
    )
    return {
        "study": settings.study,
        "storage": settings.storage,
        "gave_up": gave_up,
        "hypervolume": hypervolume(trials, driver.budget.latency_ms),
        "budget_ms": driver.budget.latency_ms,
        "teacher_predicted_ms": driver.teacher_latency_ms,
        "fine_tuned": summary.fine_tuned,
        "screened": summary.screened,
        "failed": summary.failed,
        "best_feasible_accuracy": summary.best_score,
        "wall_seconds": wall,
        "trials_per_hour": 3600 * summary.fine_tuned / wall,  # fine-tuned trials; screening is extra
        "overhead_seconds_per_trial": (wall * settings.workers - sum(tuned)) / max(len(trials), 1),
        "overhead_share": 1 - sum(tuned) / (wall * settings.workers),
        "best_trial": max(
            (t for t in trials if feasible(t) and t.user_attrs.get("fine_tuned")),
            key=lambda t: t.values[0],
            default=None,
        ),
    }


def _budget_honesty(runs: list[dict[str, Any]], tmp: Path) -> list[dict[str, Any]]:
    context = load_context(TEACHER)
    calibration = context.sets.train.waveforms[:64]
    rows, paths = [], []
    for run in runs:
        best = run.pop("best_trial")
        if best is None:
            continue
        loaded, recipe = load_student(Candidate.from_trial(best, study_folder(run["storage"])).student)
        path = tmp / f"{run['study']}-best.onnx"
        export_compressed(loaded.model, recipe, path, calibration=calibration)
        paths.append(path)
        rows.append(
            {
                "study": run["study"],
                "trial": best.number,
                "accuracy": best.values[0],
                "predicted_ms": best.values[1],
                "budget_ms": run["budget_ms"],
            }
        )
    for row, measured in zip(rows, measure_latencies(paths, threads=1), strict=True):
        row["measured_ms"] = measured.latency_ms
        row["measured_vs_predicted"] = measured.latency_ms / row["predicted_ms"]
        row["within_budget"] = measured.latency_ms <= row["budget_ms"]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/search.json"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    console = Console(width=150)
    seeds, trials, epochs = ([0], 4, 1) if args.quick else ([0, 1, 2], 8, 1)
    if not (TEACHER / "config.json").is_file():
        sys.exit(f"{TEACHER}: train the default teacher first (`paretone train`)")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        tmp = Path(work)
        profile = ensure_profile(
            _settings(tmp, "probe", "random", 0, 1, 1, 1), device="local", profile_dir="runs/devices"
        )
        quality: dict[str, list[dict[str, Any]]] = {"nsga2": [], "random": [], "uniform": []}
        for seed in seeds:
            for method in quality:
                sampler = "random" if method == "uniform" else method
                warm = method == "nsga2"  # random search and the uniform baseline stay pure
                settings = _settings(
                    tmp, f"{method}-{seed}", sampler, seed, trials, epochs, workers=2, warm=warm
                )
                quality[method].append(_run(settings, profile, method == "uniform", console))
        throughput = []
        for workers in (1, 2):
            settings = _settings(
                tmp, f"throughput-{workers}", "nsga2", 100 + workers, 4 if args.quick else 6, epochs, workers
            )
            throughput.append({"workers": workers, **_run(settings, profile, False, console)})
        try:
            honesty = _budget_honesty([r for runs in quality.values() for r in runs] + throughput, tmp)
        except Exception as exc:  # keep the search figures even if the final measurement fails
            console.print(f"budget honesty failed: {exc!r}")
            honesty = [{"error": repr(exc)}]
    for runs in [*quality.values(), throughput]:
        for run in runs:
            run.pop("best_trial", None)
    summary = {
        method: {
            "hypervolume_median": statistics.median(r["hypervolume"] for r in runs),
            "best_feasible_accuracy_median": statistics.median(
                r["best_feasible_accuracy"] or 0.0 for r in runs
            ),
        }
        for method, runs in quality.items()
    }
    result = {
        "paretone_version": __version__,
        "quick": args.quick,
        "trials_per_run": trials,
        "epochs_per_trial": epochs,
        "seeds": seeds,
        "budget_fraction": BUDGET_FRACTION,
        "quality": quality,
        "quality_summary": summary,
        "throughput": throughput,
        "budget_honesty": honesty,
        "device": profile.fingerprint,
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    write_json(args.out, result)

    table = Table(
        title=f"search quality: {trials} trials, seeds {seeds}, budget {BUDGET_FRACTION:.0%} of teacher"
    )
    for column in ("method", "hypervolume (median)", "best feasible accuracy (median)"):
        table.add_column(column, justify="right")
    for method, s in summary.items():
        table.add_row(method, f"{s['hypervolume_median']:.4f}", f"{s['best_feasible_accuracy_median']:.2%}")
    console.print(table)
    table = Table(title="throughput")
    for column in ("workers", "trials/hour", "overhead s/trial", "overhead share"):
        table.add_column(column, justify="right")
    for r in throughput:
        table.add_row(
            str(r["workers"]),
            f"{r['trials_per_hour']:.1f}",
            f"{r['overhead_seconds_per_trial']:.2f}",
            f"{r['overhead_share']:.1%}",
        )
    console.print(table)
    table = Table(title="budget honesty: best feasible trial of each run, exported and measured")
    for column in ("run", "accuracy", "predicted ms", "measured ms", "budget ms", "within budget"):
        table.add_column(column, justify="right")
    for r in (r for r in honesty if "error" not in r):
        table.add_row(
            r["study"],
            f"{r['accuracy']:.2%}",
            f"{r['predicted_ms']:.3f}",
            f"{r['measured_ms']:.3f}",
            f"{r['budget_ms']:.3f}",
            str(r["within_budget"]),
        )
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
