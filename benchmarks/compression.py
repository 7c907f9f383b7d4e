"""Compression operators on the default FSDD AST teacher: what each one buys, measured in one run.

    python benchmarks/compression.py            # official and speaker-disjoint splits (~20 min)
    python benchmarks/compression.py --quick    # official split, fewer epochs (< 10 minutes)

Cases, each distil-fine-tuned from cached teacher logits and exported with real ONNX Runtime kernels:
- attention pruned by 50% (3 of 4 heads, 2/3 of the query/key and value/output channels);
- a small AST (about 5% of the teacher) distilled vs the same student trained alone;
- every linear layer at 4 bits (MatMulNBits) and, for contrast, every layer at int8 (QDQ);
Latencies are medians of interleaved rounds in this one process, one thread, against the fp32
teacher. Teachers come from benchmarks/teacher.py's runs (or are trained here if absent).
Writes JSON to --out (default benchmarks/results/compression.json) and prints a table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from _teachers import trained_teacher  # benchmarks/, run as scripts
from rich.console import Console
from rich.table import Table

from paretone._io import write_json
from paretone._version import __version__
from paretone.audio import FrontEndConfig, SplitSets, load_splits, make_splits, open_dataset
from paretone.compress import Distill, Prune, Quantize, Recipe, apply, export_compressed, teacher_logits
from paretone.models import ASTConfig, AudioModel, build_model, count_complexity, export_onnx, load_model
from paretone.runtime import measure_latencies, run_logits
from paretone.training import TrainConfig, distil, fit, predict_logits, score

DISTILL = Distill(temperature=4.0, alpha=0.7)


def _teacher(catalog, split: str, directory: Path, epochs: int) -> AudioModel:
    trained_teacher(catalog, split, directory, epochs)  # the default AST (ASTConfig.uniform)
    return load_model(directory).model


def _attention_params(model: AudioModel) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if ".attn." in n and n.endswith("weight"))


def _case(name: str, model: AudioModel, onnx_path: Path, sets: SplitSets, **extra) -> dict:
    complexity = count_complexity(model)
    ort = torch.from_numpy(run_logits(onnx_path, sets.test.waveforms.numpy()))
    torch_logits = predict_logits(model, sets.test)
    return {
        "case": name,
        "test_accuracy": score(model, sets.test),
        "onnx_test_accuracy": (ort.argmax(1) == sets.test.targets).float().mean().item(),
        "onnx_top1_agreement": (ort.argmax(1) == torch_logits.argmax(1)).float().mean().item(),
        "onnx_max_abs_logit_diff": (ort - torch_logits).abs().max().item(),
        "params": complexity.params,
        "macs": complexity.macs,
        "attention_params": _attention_params(model),
        "file_bytes": onnx_path.stat().st_size,
        "onnx": str(onnx_path),
        **extra,
    }


def _measure_all(rows: list[dict], passes: int, runs: int) -> None:
    """Interleaved passes over all models, so machine noise hits all of them alike."""
    measured = measure_latencies([row["onnx"] for row in rows], threads=1, passes=passes, runs=runs)
    for row, latency in zip(rows, measured, strict=True):
        row["latency_ms"] = latency.latency_ms
        row["latency_vs_teacher"] = latency.latency_ms / measured[0].latency_ms


def _run_split(catalog, split: str, teacher_dir: Path, work: Path, quick: bool, console: Console) -> dict:
    finetune_epochs, student_epochs = (3, 8) if quick else (8, 30)
    sets = load_splits(make_splits(catalog, split), catalog.labels, FrontEndConfig())
    teacher = _teacher(catalog, split, teacher_dir, epochs=8 if quick else 30)
    cached = teacher_logits(teacher, sets.train, cache_dir=work / "cache")
    calibration = sets.train.waveforms[:64]
    finetune = TrainConfig.for_finetuning(finetune_epochs)
    rows = []

    teacher_onnx = export_onnx(teacher, work / f"{split}-teacher.onnx")
    rows.append(_case("fp32 teacher", teacher, teacher_onnx, sets))

    def compressed(name: str, recipe: Recipe) -> None:
        start = time.perf_counter()
        student = apply(recipe, teacher, data=sets.train)
        before = score(student, sets.test)
        distil(student, sets.train, sets.validation, cached, recipe.distillation, finetune)
        path = work / f"{split}-{name.replace(' ', '_')}.onnx"
        export_compressed(student, recipe, path, calibration=calibration)
        rows.append(
            _case(
                name,
                student,
                path,
                sets,
                test_accuracy_before_finetune=before,
                seconds=round(time.perf_counter() - start, 1),
            )
        )
        console.print(f"{split}: {name}: {rows[-1]['test_accuracy']:.2%}")

    blocks = range(len(teacher.config.blocks))
    heads = {
        f"blocks.{i}.attn.heads": max(1, 3 * b.num_heads // 4) for i, b in enumerate(teacher.config.blocks)
    }
    channels = {f"blocks.{i}.attn.{c}": 2 / 3 for i in blocks for c in ("qk_channels", "v_channels")}
    compressed("attention pruned 50%", Recipe.of(Prune(heads, channels, importance="taylor"), DISTILL))
    linears = [q.name for q in teacher.structure().quantizable if q.kind == "linear"]
    compressed("all linear 4-bit", Recipe.of(Quantize(dict.fromkeys(linears, "w4")), DISTILL))
    everything = [q.name for q in teacher.structure().quantizable]
    compressed("all int8 (w8a8)", Recipe.of(Quantize(dict.fromkeys(everything, "w8a8")), DISTILL))

    small = ASTConfig.uniform(num_classes=len(catalog.labels), dim=64, depth=2, heads=2)
    for name, distilled in (("small student alone", False), ("small student distilled", True)):
        torch.manual_seed(0)
        student = build_model(small)
        start = time.perf_counter()
        config = TrainConfig(epochs=student_epochs, patience_epochs=student_epochs)
        if distilled:
            distil(student, sets.train, sets.validation, cached, DISTILL, config.without_augmentation())
        else:
            fit(student, sets.train, sets.validation, config)
        path = export_onnx(student, work / f"{split}-{name.replace(' ', '_')}.onnx")
        rows.append(_case(name, student, path, sets, seconds=round(time.perf_counter() - start, 1)))
        console.print(f"{split}: {name}: {rows[-1]['test_accuracy']:.2%}")

    _measure_all(rows, passes=3 if quick else 5, runs=40)
    by_case = {r["case"]: r for r in rows}
    alone, distilled = by_case["small student alone"], by_case["small student distilled"]
    err_alone, err_distilled = 1 - alone["test_accuracy"], 1 - distilled["test_accuracy"]
    pruned = by_case["attention pruned 50%"]
    return {
        "split": split,
        "rows": rows,
        "attention_pruned_fraction": 1 - pruned["attention_params"] / rows[0]["attention_params"],
        "attention_pruned_accuracy_drop_points": 100 * (rows[0]["test_accuracy"] - pruned["test_accuracy"]),
        "small_student_size_vs_teacher": alone["params"] / rows[0]["params"],
        "distillation_relative_error_reduction": (err_alone - err_distilled) / err_alone
        if err_alone
        else 0.0,
        "four_bit_file_ratio": rows[0]["file_bytes"] / by_case["all linear 4-bit"]["file_bytes"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/compression.json"))
    parser.add_argument(
        "--teachers",
        type=Path,
        default=Path("runs/bench-teacher"),
        help="folder with official/ and loso-nicolas/ teachers (trained if absent)",
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    console = Console(width=150)
    catalog = open_dataset(args.data, "fsdd")
    splits = (
        [("official", "official")]
        if args.quick
        else [("official", "official"), ("speaker:nicolas", "loso-nicolas")]
    )
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path("runs/bench-compression") if not args.quick else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for split, folder in splits:
            results.append(_run_split(catalog, split, args.teachers / folder, work, args.quick, console))
    for result in results:
        for row in result["rows"]:
            row.pop("onnx")
    write_json(
        args.out,
        {
            "paretone_version": __version__,
            "quick": args.quick,
            "splits": results,
            "total_seconds": round(time.perf_counter() - started, 1),
            "latency": "ONNX Runtime CPU, 1 thread, batch 1, median of interleaved rounds",
        },
    )

    for result in results:
        table = Table(title=f"compression, split {result['split']}")
        for column in ("case", "test acc", "ORT acc", "params", "MACs", "file KB", "latency ms", "vs fp32"):
            table.add_column(column)
        for r in result["rows"]:
            table.add_row(
                r["case"],
                f"{r['test_accuracy']:.2%}",
                f"{r['onnx_test_accuracy']:.2%}",
                f"{r['params']:,}",
                f"{r['macs'] / 1e6:.1f}M",
                f"{r['file_bytes'] / 1e3:.0f}",
                f"{r['latency_ms']:.3f}",
                f"{r['latency_vs_teacher']:.2f}x",
            )
        console.print(table)
        console.print(
            f"attention params removed {result['attention_pruned_fraction']:.0%}, accuracy drop "
            f"{result['attention_pruned_accuracy_drop_points']:.2f} points; small student "
            f"({result['small_student_size_vs_teacher']:.1%} of teacher) error reduced by distillation "
            f"{result['distillation_relative_error_reduction']:.0%}; 4-bit file "
            f"{result['four_bit_file_ratio']:.1f}x smaller"
        )
    console.print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
