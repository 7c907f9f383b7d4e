"""Fault injection, repeated: what each fault did to the study, from the tests that inject it.

    python benchmarks/reliability.py            # every fault 3 times (~35 min)
    python benchmarks/reliability.py --quick    # every fault once (< 10 minutes)

Runs tests/search/test_reliability.py (real processes: kill -9 of the driver and of Ray workers,
NaN losses, a worker over its memory cap, two drivers on one study over journal, SQLite and a
PostgreSQL server the test starts, kills during atomic writes) and tests/cli/test_hostile_inputs.py
(one case per class of hostile or mistaken input) with PARETONE_RELIABILITY_LOG set, so every test
appends what it observed (trials kept, lost, retried, left running; exit codes, lines printed, files
written, inputs changed). Prints a table per fault and per input class; writes the JSON to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from paretone._io import write_json
from paretone._version import __version__

TESTS = ("tests/search/test_reliability.py", "tests/cli/test_hostile_inputs.py")
EXPECTED = {
    "driver SIGKILL mid-study, then --resume": "kept = complete at kill, lost 0, each orphan retried once, "
    "finished = requested, artifacts intact",
    "Ray worker SIGKILL mid-trial": "1 FAIL 'worker died', retried once, finished = requested",
    "NaN loss (teacher-logits cache corrupted with NaN)": "all FAIL, FloatingPointError, none running",
    "worker over its memory cap": "every trial FAIL with the cap in the reason, not retried, none running",
    "SIGKILL during atomic JSON writes": "never a torn file",
}


def _expected(fault: str) -> str:
    if fault.startswith("2 drivers"):
        return "fine-tuned = requested (+1 at most), 0 duplicates, 0 lost, none running"
    if fault.startswith("hostile input"):
        return "exit 2, 1 line, 0 files written, 0 inputs changed"
    return EXPECTED.get(fault, "")


def _summary(rows: list[dict[str, Any]]) -> str:
    if rows[0]["fault"].startswith("hostile input"):
        cases = sorted({r["case"] for r in rows})
        return (
            f"{len(cases)} cases: exit {sorted({r['exit_code'] for r in rows})}, lines "
            f"{sorted({r['lines'] for r in rows})}, files written {sum(r['files_written'] for r in rows)}, "
            f"inputs changed {sum(r['inputs_changed'] for r in rows)} ({'; '.join(cases)})"
        )
    keys = [k for k in rows[0] if k not in ("fault", "reason", "message")]
    parts = []
    for key in keys:
        values = [r[key] for r in rows]
        parts.append(f"{key}={values[0]}" if len(set(map(str, values))) == 1 else f"{key}={values}")
    return ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/reliability.json"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else 3
    console = Console()
    started = time.perf_counter()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "observations.jsonl"
        for repeat in range(repeats):
            console.print(f"round {repeat + 1}/{repeats}: pytest {' '.join(TESTS)}")
            began = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS],
                env={**os.environ, "PARETONE_RELIABILITY_LOG": str(log)},
                capture_output=True,
                text=True,
            )
            summary = (done.stdout.strip().splitlines() or ["no output"])[-1]
            runs.append({"round": repeat + 1, "exit_code": done.returncode, "pytest": summary,
                         "seconds": round(time.perf_counter() - began, 1)})  # fmt: skip
            console.print(f"  {summary}")
        observations = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    by_fault: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in observations:
        by_fault[row["fault"]].append(row)
    faults = [
        {"fault": fault, "injected": len(rows), "expected": _expected(fault), "observed": _summary(rows),
         "rows": rows}
        for fault, rows in by_fault.items()
    ]  # fmt: skip
    result = {
        "benchmark": "reliability",
        "paretone_version": __version__,
        "quick": args.quick,
        "rounds": runs,
        "all_tests_passed": all(r["exit_code"] == 0 for r in runs),
        "faults": faults,
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_json(args.out, result)
    table = Table(title=f"fault injection, {repeats} round(s): {sum(f['injected'] for f in faults)} faults")
    for column in ("fault", "injected", "expected", "observed"):
        table.add_column(column, overflow="fold")
    for fault in faults:
        table.add_row(fault["fault"], str(fault["injected"]), fault["expected"], fault["observed"])
    console.print(table)
    console.print(
        f"all tests passed: {result['all_tests_passed']}; wrote {args.out} in {result['seconds']:.0f} s"
    )
    return 0 if result["all_tests_passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
