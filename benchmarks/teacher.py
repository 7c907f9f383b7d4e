"""Teacher accuracy on FSDD: the official split, leave-one-speaker-out, and what helps on new voices.

    python benchmarks/teacher.py            # full run (about 45 minutes on 2 cores)
    python benchmarks/teacher.py --quick    # same figures on a smaller scale (< 10 minutes)

Writes JSON to --out (default benchmarks/results/teacher.json) and prints a table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from paretone._io import write_json
from paretone._version import __version__
from paretone.audio import FrontEndConfig, open_dataset
from paretone.models import ASTConfig
from paretone.training import TrainConfig, train_teacher


def _run(
    catalog,
    split: str,
    out: Path,
    *,
    epochs: int,
    normalization: str = "utterance",
    augment: bool = True,
) -> dict:
    front_end = FrontEndConfig(normalization=normalization)
    model_config = ASTConfig.uniform(num_classes=len(catalog.labels), front_end=front_end)
    train_config = TrainConfig(epochs=epochs)
    if not augment:
        train_config = train_config.without_augmentation()
    metrics = train_teacher(
        catalog=catalog,
        split=split,
        model_config=model_config,
        train_config=train_config,
        out_dir=out,
        latency_threads=(1,),
        overwrite=True,  # the benchmark's own folder
    )
    return {
        "split": split,
        "test_accuracy": metrics["accuracy"]["test"],
        "validation_accuracy": metrics["accuracy"]["validation"],
        "epochs_run": metrics["training"]["epochs_run"],
        "train_seconds": metrics["training"]["seconds"],
        "params": metrics["model"]["params"],
        "macs": metrics["model"]["macs"],
        "onnx_bytes": metrics["onnx"]["bytes"],
        "latency_ms_1_thread": metrics["latency_ms"]["threads_1"]["median_ms"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/teacher.json"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=Path, default=Path("runs/bench-teacher"))
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    console = Console(width=150)
    catalog = open_dataset(args.data, "fsdd")
    epochs = 6 if args.quick else 30
    loso_epochs = 4 if args.quick else 20  # six speakers: the budget of one session's benchmark
    speakers = ["nicolas", "theo"] if args.quick else list(catalog.speakers)
    ablation_speakers = ["nicolas"]
    started = time.perf_counter()

    official = _run(catalog, "official", args.runs / "official", epochs=epochs)
    console.print(f"official: {official['test_accuracy']:.2%} in {official['train_seconds']:.0f} s")
    loso = []
    for speaker in speakers:
        row = _run(catalog, f"speaker:{speaker}", args.runs / f"loso-{speaker}", epochs=loso_epochs)
        loso.append(row)
        console.print(f"held-out {speaker}: {row['test_accuracy']:.2%}")
    variants = {
        "no per-utterance normalisation": {"normalization": "none"},
        "no augmentation": {"augment": False},
    }
    ablation = []
    for name, options in variants.items():
        for speaker in ablation_speakers:
            row = _run(
                catalog,
                f"speaker:{speaker}",
                args.runs / f"ablation-{speaker}-{len(ablation)}",
                epochs=loso_epochs,
                **options,
            )
            ablation.append({"variant": name, **row})
            console.print(f"{name}, held-out {speaker}: {row['test_accuracy']:.2%}")

    result = {
        "paretone_version": __version__,
        "quick": args.quick,
        "epochs": {"official": epochs, "speaker_splits": loso_epochs},
        "model": "default AST (dim 192, depth 4, heads 4, mlp 2, full-band 2-frame patches)",
        "official": official,
        "leave_one_speaker_out": loso,
        "loso_mean_test_accuracy": statistics.mean(r["test_accuracy"] for r in loso),
        "ablation": ablation,
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    write_json(args.out, result)

    table = Table(title=f"teacher accuracy ({'quick' if args.quick else 'full'})")
    for column in ("split / variant", "test acc", "val acc", "epochs", "train s"):
        table.add_column(column)
    rows = [
        ("official", official),
        *((f"LOSO {r['split'][8:]}", r) for r in loso),
        *((f"{r['variant']} ({r['split'][8:]})", r) for r in ablation),
    ]
    for name, r in rows:
        table.add_row(
            name,
            f"{r['test_accuracy']:.2%}",
            f"{r['validation_accuracy']:.2%}",
            str(r["epochs_run"]),
            f"{r['train_seconds']:.0f}",
        )
    table.add_row("LOSO mean", f"{result['loso_mean_test_accuracy']:.2%}", "", "", "")
    console.print(table)
    console.print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
