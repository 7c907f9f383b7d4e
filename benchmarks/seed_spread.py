"""How much of a search's test figure is the fine-tuning seed: the same candidates, several seeds.

    python benchmarks/seed_spread.py            # 8 candidates x 4 seeds, 1 epoch each (about 4 minutes)
    python benchmarks/seed_spread.py --epochs 3 # longer fine-tuning: does the seed matter less?
    python benchmarks/seed_spread.py --quick    # 4 candidates x 3 seeds

The search benchmark compares methods by the test metric of each one's best validation trial, and
a search fine-tunes every recipe with seed 0. Whether one point of test metric between two methods
means anything depends on how far the same recipe moves when only the fine-tuning seed (batch
order) changes. Candidates: the uniform rule at 25% of the teacher (every format and front-end
choice, the largest kept fraction that fits) and the integer program's allocations, on the
15-epoch `speaker:nicolas:2` teacher of benchmarks/search.py (trained if absent). Each is
fine-tuned for 1 epoch (as `--scale medium` and `seeds` do; `--epochs`) with each seed, in this process, and
scored on validation and on the test speaker (the PyTorch student). Reported: per candidate, mean
and standard deviation over seeds; the seed's own spread (the median within-candidate standard
deviation) beside the spread between candidates' means; and the Spearman correlation of validation
and test over candidates' means and over single runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from scipy.stats import spearmanr
from search import BUDGET_FRACTION, bench_teacher  # benchmarks/, run as scripts: its teacher

from paretone._io import write_json
from paretone._version import __version__
from paretone.audio import open_dataset
from paretone.compress import load_student
from paretone.evaluators import TrialEvaluator
from paretone.hw_models import LatencyModel, MemoryModel
from paretone.search import Budget, Driver, SearchSettings, StudyInfo, ensure_profile
from paretone.training import score

SPLIT = "speaker:nicolas:2"


def _candidates(
    teacher: Path, tmp: Path, count: int
) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, Any]]:
    """(origin, recipe dict) of the uniform rule's points and the allocations at the budget (a
    quarter of ``count`` from the allocations, as `paretone search --allocate` starts a study),
    and what allocating cost the driver (the sensitivity measured, or read from the teacher's cache,
    then one integer program per front-end choice and budget level)."""
    settings = SearchSettings(
        teacher=teacher,
        study="seed-spread",
        storage=f"journal:{tmp / 'study.log'}",
        budget=Budget(latency_fraction=BUDGET_FRACTION),
        runs_dir=tmp / "runs",
        allocate=True,
    )
    profile = ensure_profile(settings, device="local", profile_dir="runs/devices")
    driver = Driver(settings, latency=LatencyModel(profile), memory=MemoryModel(profile), device="local")
    starts = StudyInfo.read(driver.study, driver.settings.folder).warm_starts
    allocated = [("allocation", s.params) for s in starts if s.origin == "allocation"]
    chosen = [("uniform", p) for p in driver.costs.uniform_rule(driver.space, driver.budget)]
    chosen = chosen[: count - min(len(allocated), count // 4)]
    chosen += allocated[: count - len(chosen)]
    summary = driver.summary(0.0)
    setup = {
        "sensitivity_seconds": summary.sensitivity_seconds,
        "allocation_seconds": summary.allocation_seconds,
        "front_end_choices": len(driver.space.front_end_options()),
        "allocations": len(allocated),
    }
    return [(where, driver.space.recipe(p).to_dict()) for where, p in chosen], setup


def _spread(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--epochs", type=int, default=1, help="of each fine-tuning [1]")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    count, seeds = (4, 3) if args.quick else (8, 4)
    suffix = ("-quick" if args.quick else "") + ("" if args.epochs == 1 else f"-{args.epochs}ep")
    out = args.out or Path(f"benchmarks/results/seed-spread{suffix}.json")
    started = time.perf_counter()
    teacher = bench_teacher(open_dataset(args.data, "fsdd"), SPLIT, 15)
    console = Console(width=140)
    rows = []
    with tempfile.TemporaryDirectory() as work:
        tmp = Path(work)
        candidates, setup = _candidates(teacher, tmp, count)
        evaluator = TrialEvaluator(teacher, data=args.data, split=SPLIT)
        context = evaluator.context
        for index, (where, recipe) in enumerate(candidates):
            runs = []
            for seed in range(seeds):
                folder = tmp / f"c{index}-s{seed}"
                result = evaluator.fine_tune(recipe, epochs=args.epochs, out_dir=folder, seed=seed)
                student, _ = load_student(folder)
                runs.append(
                    {
                        "seed": seed,
                        "validation": result.score,
                        "test": score(student.model, context.sets.test, context.task),
                    }
                )
            rows.append({"candidate": index, "origin": where, "recipe": recipe, "runs": runs})
            console.print(
                f"candidate {index} ({where}): "
                + ", ".join(f"{r['validation']:.3f}/{r['test']:.3f}" for r in runs)
            )
    for row in rows:
        for metric in ("validation", "test"):
            values = [r[metric] for r in row["runs"]]
            row[f"{metric}_mean"], row[f"{metric}_sd"] = statistics.mean(values), _spread(values)
    spread = {
        metric: {
            "within_candidate_sd_median": statistics.median(row[f"{metric}_sd"] for row in rows),
            "between_candidate_means_sd": _spread([row[f"{metric}_mean"] for row in rows]),
        }
        for metric in ("validation", "test")
    }
    singles = [r for row in rows for r in row["runs"]]
    correlation = {
        "over_means": float(
            spearmanr([r["validation_mean"] for r in rows], [r["test_mean"] for r in rows]).statistic
        ),
        "over_single_runs": float(
            spearmanr([r["validation"] for r in singles], [r["test"] for r in singles]).statistic
        ),
    }
    payload = {
        "benchmark": "seed_spread",
        "paretone_version": __version__,
        "split": SPLIT,
        "teacher": str(teacher),
        "budget_fraction": BUDGET_FRACTION,
        "seeds": seeds,
        "epochs": args.epochs,
        "allocation_setup": setup,
        "spread": spread,
        "validation_test_spearman": correlation,
        "candidates": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_json(out, payload)
    table = Table(title=f"{len(rows)} candidates x {seeds} fine-tuning seeds, {args.epochs} epochs, {SPLIT}")
    for column in ("candidate", "origin", "validation mean", "sd", "test mean", "sd"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            str(row["candidate"]), row["origin"], f"{row['validation_mean']:.3f}",
            f"{row['validation_sd']:.3f}", f"{row['test_mean']:.3f}", f"{row['test_sd']:.3f}",
        )  # fmt: skip
    console.print(table)
    for metric, s in spread.items():
        console.print(
            f"{metric}: the seed moves a candidate by {s['within_candidate_sd_median']:.3f} (median sd); "
            f"candidates' means differ by {s['between_candidate_means_sd']:.3f} (sd)"
        )
    console.print(
        f"allocating: sensitivity {setup['sensitivity_seconds']:.1f} s, integer programs "
        f"{setup['allocation_seconds']:.1f} s over {setup['front_end_choices']} front-end choices"
    )
    console.print(
        f"validation~test Spearman: {correlation['over_means']:.2f} over means, "
        f"{correlation['over_single_runs']:.2f} over single runs; wrote {out} in {payload['seconds']:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
