"""Quaternion CNNs on FSDD: the published pruning claim on our data, and what the family buys.

    python benchmarks/qcnn.py            # official and speaker:nicolas splits (about 65 minutes here)
    python benchmarks/qcnn.py --quick    # official split, a few epochs, a tiny search (< 10 minutes)

1. Teachers: a QCNN (deltas input) per split, the learned-input variant on official, and a CNN and
   an AST on speaker:nicolas for comparison (`paretone train` defaults otherwise).
2. How a quaternion convolution ships: four stored components built into the dense weight when the
   session loads, against the dense weight stored: file bytes, load time, latency, peak memory.
3. The published claim (Singh, Abrol, Plumbley): the QCNN pruned by operator-norm importance to about
   80% fewer parameters (and at least 50% fewer MACs), distil-fine-tuned, against the unpruned QCNN.
4. Importance criteria at the same pruning ratio: accuracy right after pruning and after fine-tuning,
   seconds to score.
5. Pruning against distillation into a smaller QCNN of the same size, trained from scratch on the
   cached teacher logits: accuracy and CPU-seconds.
6. QCNN against the real-valued CNN at equal parameters and at equal MACs.
7. A search at 25% of the QCNN teacher's latency and its pick, measured beside the teacher.
Latencies: ONNX Runtime, 1 thread, batch 1, interleaved passes in one process; ratios, not absolute
times. Writes JSON to --out (default benchmarks/results/qcnn.json) and prints tables.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _teachers import trained_teacher  # benchmarks/, run as scripts
from rich.console import Console
from rich.table import Table

from paretone._io import write_json
from paretone._version import __version__
from paretone.audio import FrontEndConfig, SplitSets, load_splits, make_splits, open_dataset
from paretone.compress import Distill, Prune, Recipe, apply, importance_named, teacher_logits
from paretone.hw_models import calibrate
from paretone.models import (
    AudioModel,
    DenseWeightConv,
    build_model,
    count_complexity,
    export_onnx,
    family_named,
    load_model,
)
from paretone.runtime import measure_latencies, measure_peak_bytes, measure_session_peak_bytes, run_logits
from paretone.search import Budget, SearchSettings, run_search
from paretone.ship import PICKED, TEACHER_FP32, OverBudgetError, PickSettings, pick
from paretone.tasks import CLASSIFICATION
from paretone.training import TrainConfig, distil, score

KEEP = 0.45  # of every unit's filters: about 80% of the parameters and of the MACs removed
DISTILL = Distill(temperature=4.0, alpha=0.7)
SPLITS = {"official": "official", "speaker:nicolas": "loso-nicolas"}


def _teacher(catalog, family: str, split: str, out: Path, epochs: int, **sizes: Any) -> dict[str, Any]:
    """Train (or reuse) a teacher; its metrics."""
    trained_teacher(catalog, split, out, epochs, family=family, **sizes)
    loaded = load_model(out)
    metrics = json.loads((out / "metrics.json").read_text())
    return {
        "family": family,
        "split": split,
        "folder": str(out),
        "model": loaded.model,
        "test_accuracy": metrics["accuracy"]["test"],
        "validation_accuracy": metrics["accuracy"]["validation"],
        "epochs_run": metrics["training"]["epochs_run"],
        "train_seconds": metrics["training"]["seconds"],
        "params": metrics["model"]["params"],
        "macs": metrics["model"]["macs"],
    }


def _onnx_case(name: str, model: AudioModel, path: Path, sets: SplitSets, **extra: Any) -> dict[str, Any]:
    complexity = count_complexity(model)
    logits = torch.from_numpy(run_logits(path, sets.test.waveforms.numpy()))
    return {
        "case": name,
        "test_accuracy": score(model, sets.test),
        "onnx_test_accuracy": CLASSIFICATION.score(logits, sets.test.targets),
        "params": complexity.params,
        "macs": complexity.macs,
        "file_bytes": path.stat().st_size,
        "onnx": str(path),
        **extra,
    }


def _measure(rows: list[dict[str, Any]], passes: int, memory: bool = True) -> None:
    """Side by side: interleaved passes over every model, one thread; ratios to the first row."""
    measured = measure_latencies([r["onnx"] for r in rows], threads=1, passes=passes, runs=40)
    empty = measure_session_peak_bytes() if memory else 0
    for row, latency in zip(rows, measured, strict=True):
        row["latency_ms"] = latency.latency_ms
        row["latency_vs_first"] = latency.latency_ms / measured[0].latency_ms
        if memory:
            row["peak_bytes"] = max(measure_peak_bytes(row["onnx"]) - empty, 0)


def _prune(teacher: AudioModel, criterion: str, sets: SplitSets, cached: torch.Tensor, epochs: int) -> dict:
    units = {u.name: KEEP for u in teacher.structure().prunable}
    recipe = Recipe.of(Prune(channels=units, importance=criterion), DISTILL)
    data = sets.train
    started = time.perf_counter()
    scored = importance_named(criterion).scores(teacher, data, CLASSIFICATION)
    score_seconds = time.perf_counter() - started
    del scored
    student = apply(recipe, teacher, data=data)
    before = score(student, sets.test)
    cpu = time.process_time()
    distil(student, data, sets.validation, cached, DISTILL, TrainConfig.for_finetuning(epochs))
    return {
        "criterion": criterion,
        "student": student,
        "recipe": recipe,
        "test_accuracy_after_pruning": before,
        "test_accuracy_after_finetuning": score(student, sets.test),
        "score_seconds": round(score_seconds, 3),
        "finetune_cpu_seconds": round(time.process_time() - cpu, 1),
    }


def _split(catalog, split: str, folder: str, work: Path, quick: bool, console: Console) -> dict[str, Any]:
    teacher_epochs, finetune_epochs = (3, 1) if quick else (30, 10)
    root = Path("runs/bench-qcnn") / folder
    sets = load_splits(make_splits(catalog, split), catalog.labels, FrontEndConfig())
    qcnn = _teacher(catalog, "qcnn", split, root / "qcnn", teacher_epochs)
    console.print(f"{split}: qcnn teacher {qcnn['test_accuracy']:.2%} ({qcnn['params']:,} params)")
    teacher = qcnn["model"]
    cached = teacher_logits(teacher, sets.train, cache_dir=work / "cache")
    result: dict[str, Any] = {"split": split, "teachers": [qcnn]}

    # 3 and 4: every criterion at the same ratio; operator norm is the published one
    pruned = {
        c: _prune(teacher, c, sets, cached, finetune_epochs) for c in ("operator_norm", "magnitude", "taylor")
    }
    rows = [_onnx_case("qcnn teacher", teacher, export_onnx(teacher, work / f"{folder}-t.onnx"), sets)]
    for criterion, case in pruned.items():
        path = export_onnx(case["student"], work / f"{folder}-{criterion}.onnx")
        rows.append(_onnx_case(f"pruned, {criterion}", case["student"], path, sets))
    # 5: a QCNN of the pruned one's size, trained from scratch by distillation for as many CPU-seconds' worth
    small_config = pruned["operator_norm"]["student"].config
    torch.manual_seed(0)
    small = build_model(small_config)
    cpu = time.process_time()
    distil(
        small,
        sets.train,
        sets.validation,
        cached,
        DISTILL,
        TrainConfig(epochs=teacher_epochs).without_augmentation(),
    )
    small_cpu = time.process_time() - cpu
    rows.append(
        _onnx_case(
            "same size, distilled from scratch",
            small,
            export_onnx(small, work / f"{folder}-small.onnx"),
            sets,
        )
    )
    _measure(rows, passes=3 if quick else 5, memory=not quick)
    for row in rows:
        row.pop("onnx")
    teacher_row = rows[0]
    published = rows[1]
    result["rows"] = rows
    result["criteria"] = [
        {k: v for k, v in case.items() if k not in ("student", "recipe")} for case in pruned.values()
    ]
    result["pruned_accuracy_drop"] = 100 * (teacher_row["test_accuracy"] - published["test_accuracy"])
    result["pruned_params_fraction"] = 1 - published["params"] / teacher_row["params"]
    result["pruned_macs_fraction"] = 1 - published["macs"] / teacher_row["macs"]
    result["pruned_latency_ratio"] = published["latency_vs_first"]
    result["pruning_vs_distillation"] = {
        "pruned_test_accuracy": published["test_accuracy"],
        "pruned_cpu_seconds": pruned["operator_norm"]["finetune_cpu_seconds"],
        "distilled_test_accuracy": rows[-1]["test_accuracy"],
        "distilled_cpu_seconds": round(small_cpu, 1),
    }
    return result


def _storage(teacher: AudioModel, work: Path, passes: int) -> list[dict[str, Any]]:
    """Four stored components (built into the dense weight at load) against the dense weight stored."""
    import onnxruntime as ort

    folded = copy.deepcopy(teacher)
    modules = dict(folded.named_modules())
    for name, module in list(modules.items()):
        if isinstance(module, DenseWeightConv):
            parent, _, child = name.rpartition(".")
            setattr(modules[parent], child, module.folded())
    paths = [export_onnx(teacher, work / "components.onnx"), export_onnx(folded, work / "dense.onnx")]
    measured = measure_latencies(paths, threads=1, passes=passes, runs=40)
    empty = measure_session_peak_bytes()
    rows = []
    for name, path, latency in zip(
        ("components, built at load", "dense weight stored"), paths, measured, strict=True
    ):
        loads = []
        for _ in range(5):
            started = time.perf_counter()
            ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            loads.append(time.perf_counter() - started)
        rows.append(
            {
                "storage": name,
                "file_bytes": path.stat().st_size,
                "latency_ms": latency.latency_ms,
                "latency_vs_components": latency.latency_ms / measured[0].latency_ms,
                "load_ms": 1000 * sorted(loads)[2],
                "peak_bytes": max(measure_peak_bytes(path) - empty, 0),
            }
        )
    return rows


def _versus_cnn(
    catalog, sets: SplitSets, qcnn: dict, work: Path, epochs: int, passes: int
) -> list[dict[str, Any]]:
    """The QCNN beside CNNs of equal parameters (half the width) and equal MACs (the same width)."""
    channels = family_named("qcnn").size_options[0].default
    root = Path("runs/bench-qcnn/official")
    cnns = {
        "cnn, equal MACs": _teacher(
            catalog, "cnn", "official", root / "cnn-equal-macs", epochs, channels=channels
        ),
        "cnn, equal params": _teacher(
            catalog,
            "cnn",
            "official",
            root / "cnn-equal-params",
            epochs,
            channels=tuple(c // 2 for c in channels),
        ),
    }
    rows = [_onnx_case("qcnn", qcnn["model"], export_onnx(qcnn["model"], work / "q.onnx"), sets)]
    for name, info in cnns.items():
        rows.append(_onnx_case(name, info["model"], export_onnx(info["model"], work / f"{name}.onnx"), sets))
    _measure(rows, passes=passes)
    for row in rows:
        row.pop("onnx")
    return rows


def _search_and_pick(teacher_dir: Path, work: Path, quick: bool, console: Console) -> dict[str, Any]:
    teacher = load_model(teacher_dir).model
    devices = Path("runs/devices")
    if quick:  # a coarse profile of its own, so the quick run stays quick
        devices = work / "devices"
        calibrate(device="local", profile_dir=devices, teacher=teacher, models=6, passes=2)
    settings = SearchSettings(
        teacher=teacher_dir,
        study="bench-qcnn",
        storage=f"sqlite:///{work / 'qcnn-study.db'}",
        trials=4 if quick else 16,
        budget=Budget(latency_fraction=0.25),
        workers=2,
        epochs=1 if quick else 2,
        runs_dir=work / "runs",
    )
    summary = run_search(settings, device="local", profile_dir=devices)
    console.print(
        f"search: {summary.fine_tuned} fine-tuned, {summary.screened} screened, front {summary.front}"
    )
    searched = {"fine_tuned": summary.fine_tuned, "screened": summary.screened, "front": summary.front}
    try:  # every front member may be tried: a refusal is a result, not a crash that loses the others
        report = pick(
            PickSettings(
                study=settings.study,
                storage=settings.storage,
                out=work / "pick",
                latency_limit_fraction=0.25,
                final_epochs=2 if quick else 10,
                attempts=max(3, summary.front),
            ),
            progress=console.print,
        )
    except OverBudgetError as exc:
        return {**searched, "shipped": False, "refusal": str(exc)}
    picked, fp32 = report.model(PICKED), report.model(TEACHER_FP32)
    return {
        **searched,
        "shipped": True,
        "attempts": [
            {k: getattr(a, k) for k in ("trial", "predicted_latency_ms", "measured_latency_ms", "limit_ms")}
            for a in report.attempts
        ],
        "picked_trial": report.trial,
        "recipe_in_words": list(report.recipe_in_words),
        "picked_test_accuracy": picked.test_score,
        "teacher_test_accuracy": fp32.test_score,
        "picked_latency_ms": picked.measured_latency_ms,
        "teacher_latency_ms": fp32.measured_latency_ms,
        "latency_ratio": picked.measured_latency_ms / fp32.measured_latency_ms,
        "limit_ms": report.limit_ms,
        "within_limit": picked.measured_latency_ms <= report.limit_ms,
        "file_ratio": picked.file_bytes / fp32.file_bytes,
    }


def _table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]) for c in columns))
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/qcnn.json"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    console = Console(width=160)
    catalog = open_dataset(args.data, "fsdd")
    started = time.perf_counter()
    splits = ["official"] if args.quick else list(SPLITS)
    epochs, passes = (3, 3) if args.quick else (30, 5)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results = [_split(catalog, split, SPLITS[split], work, args.quick, console) for split in splits]
        official = results[0]["teachers"][0]
        root = Path("runs/bench-qcnn/official")
        learned = _teacher(
            catalog, "qcnn", "official", root / "qcnn-learned", epochs, quaternion_input="learned"
        )
        inputs = [
            {
                "input": "deltas",
                "test_accuracy": official["test_accuracy"],
                "epochs_run": official["epochs_run"],
            },
            {
                "input": "learned",
                "test_accuracy": learned["test_accuracy"],
                "epochs_run": learned["epochs_run"],
            },
        ]
        storage = _storage(official["model"], work, passes)
        official_sets = load_splits(make_splits(catalog, "official"), catalog.labels, FrontEndConfig())
        versus = _versus_cnn(catalog, official_sets, official, work, epochs, passes)
        beside = []
        if not args.quick:
            for family, sizes in (("cnn", {}), ("ast", {"epochs": 20})):
                info = _teacher(
                    catalog,
                    family,
                    "speaker:nicolas",
                    Path("runs/bench-qcnn/loso-nicolas") / family,
                    sizes.pop("epochs", 30),
                )
                beside.append({k: v for k, v in info.items() if k != "model"})
        search = _search_and_pick(Path(official["folder"]), work, args.quick, console)
    for result in results:
        for teacher in result["teachers"]:
            teacher.pop("model")
    first = results[0]
    payload = {
        "benchmark": "qcnn",
        "paretone_version": __version__,
        "quick": args.quick,
        "pruned_accuracy_drop": first["pruned_accuracy_drop"],
        "pruned_params_fraction": first["pruned_params_fraction"],
        "pruned_macs_fraction": first["pruned_macs_fraction"],
        "keep": KEEP,
        "splits": results,
        "quaternion_input": inputs,
        "storage": storage,
        "versus_cnn": versus,
        "speaker_nicolas_beside": beside,
        "search": search,
        "seconds": round(time.perf_counter() - started, 1),
        "latency": "ONNX Runtime CPU, 1 thread, batch 1, median of the quietest of interleaved passes",
    }
    write_json(args.out, payload)
    for result in results:
        console.print(
            _table(
                f"QCNN on {result['split']} (pruned to keep {KEEP:.0%} of every unit's filters)",
                result["rows"],
                [
                    "case",
                    "test_accuracy",
                    "onnx_test_accuracy",
                    "params",
                    "macs",
                    "file_bytes",
                    "latency_vs_first",
                ],
            )
        )
        console.print(_table("importance criteria", result["criteria"], list(result["criteria"][0])))
        console.print(
            f"pruned: {result['pruned_params_fraction']:.0%} fewer params, "
            f"{result['pruned_macs_fraction']:.0%} fewer MACs, "
            f"accuracy drop {result['pruned_accuracy_drop']:+.2f} points, latency "
            f"{result['pruned_latency_ratio']:.2f}x; vs distillation: {result['pruning_vs_distillation']}"
        )
    console.print(_table("quaternion input", inputs, ["input", "test_accuracy", "epochs_run"]))
    console.print(_table("storage", storage, list(storage[0])))
    console.print(
        _table(
            "QCNN vs CNN (official)",
            versus,
            ["case", "test_accuracy", "params", "macs", "file_bytes", "latency_vs_first", "peak_bytes"],
        )
    )
    console.print(f"search and pick at 25%: {search}")
    console.print(f"wrote {args.out} in {payload['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
