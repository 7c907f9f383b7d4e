"""Commands about data, training and compressing one model: data, train, compress."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from paretone.cli._common import cli, data_options, progress_bar


@cli.command()
@data_options
@click.option("--check", is_flag=True, help="Also decode every audio file.")
def data(data: Path | None, layout: str, split: str, check: bool) -> None:
    """Describe a dataset and its train/validation/test split."""
    from paretone.audio import FrontEndConfig, load_splits, make_splits, open_dataset

    catalog = open_dataset(data, layout)
    splits = make_splits(catalog, split)
    click.echo(
        f"{catalog.root}: {catalog.layout} layout, {len(catalog.clips)} clips, "
        f"{len(catalog.labels)} classes ({', '.join(catalog.labels)})"
    )
    if catalog.speakers:
        click.echo(f"speakers: {', '.join(catalog.speakers)}")
    sizes = splits.sizes()
    click.echo(f"split {splits.name}: " + ", ".join(f"{k} {v}" for k, v in sizes.items()))
    if check:
        with progress_bar() as progress:
            load_splits(splits, catalog.labels, FrontEndConfig(), progress=progress)
        click.echo(f"all {sum(sizes.values())} files decoded")


@cli.command()
@data_options
@click.option("--model", "family", type=click.Choice(["ast", "cnn"]), default="ast", show_default=True)
@click.option("--dim", default=192, show_default=True, help="AST embedding width.")
@click.option("--depth", default=4, show_default=True, help="AST blocks.")
@click.option("--heads", default=4, show_default=True, help="AST attention heads.")
@click.option("--mlp-ratio", default=2.0, show_default=True, help="AST feed-forward width / dim.")
@click.option(
    "--channels",
    default="16,16,32,32,64,64,128,128",
    show_default=True,
    help="CNN output channels per conv block (max-pool after every second).",
)
@click.option("--epochs", default=30, show_default=True)
@click.option("--batch-size", default=32, show_default=True)
@click.option("--lr", default=2e-3, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--threads", default=2, show_default=True, help="CPU threads for training.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Output folder (default: runs/teacher-<model>-<split>).",
)
def train(
    data: Path | None,
    layout: str,
    split: str,
    family: str,
    dim: int,
    depth: int,
    heads: int,
    mlp_ratio: float,
    channels: str,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    threads: int,
    out: Path | None,
) -> None:
    """Train a teacher, save it (safetensors + JSON), export it to ONNX and report it."""
    import torch

    from paretone.audio import open_dataset
    from paretone.errors import ConfigError
    from paretone.models import ASTConfig, CNNConfig
    from paretone.training import TrainConfig, train_teacher

    if threads < 1:
        raise ConfigError("--threads must be >= 1")
    torch.set_num_threads(threads)
    catalog = open_dataset(data, layout)
    num_classes = len(catalog.labels)
    if family == "ast":
        config = ASTConfig.uniform(
            num_classes=num_classes, dim=dim, depth=depth, heads=heads, mlp_ratio=mlp_ratio
        )
    else:
        try:
            widths = tuple(int(c) for c in channels.split(","))
        except ValueError:
            raise ConfigError(f"--channels {channels!r}: give whole numbers separated by commas") from None
        config = CNNConfig.uniform(num_classes=num_classes, channels=widths)
    train_config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    out = out or Path("runs") / f"teacher-{family}-{split.replace(':', '-')}"
    with progress_bar() as progress:
        metrics = train_teacher(
            catalog=catalog,
            split=split,
            model_config=config,
            train_config=train_config,
            out_dir=out,
            progress=progress,
        )
    _print_report(metrics, out)


@cli.command()
@click.option("--teacher", type=click.Path(path_type=Path), required=True, help="Teacher folder.")
@click.option(
    "--recipe",
    "recipe_path",
    type=click.Path(path_type=Path),
    required=True,
    help="Recipe JSON (format paretone.recipe/1).",
)
@click.option("--data", type=click.Path(path_type=Path), default=None, help="Default: the teacher's data.")
@click.option("--split", default=None, help="Default: the teacher's split.")
@click.option("--epochs", default=8, show_default=True, help="Distillation fine-tuning epochs.")
@click.option("--threads", default=2, show_default=True, help="CPU threads for training.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Output folder (default: runs/student-<recipe name>).",
)
def compress(
    teacher: Path,
    recipe_path: Path,
    data: Path | None,
    split: str | None,
    epochs: int,
    threads: int,
    out: Path | None,
) -> None:
    """Compress a teacher by a recipe, distil, export with real low-bit kernels and report."""
    import json

    import torch

    from paretone.compress import Recipe
    from paretone.errors import ConfigError
    from paretone.evaluators import evaluate
    from paretone.training import TrainConfig

    try:
        recipe = Recipe.from_dict(json.loads(recipe_path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{recipe_path}: cannot read the recipe ({exc})") from None
    except ConfigError as exc:
        raise ConfigError(f"{recipe_path}: {exc}") from None
    if threads < 1 or epochs < 1:
        raise ConfigError("--threads and --epochs must be >= 1")
    torch.set_num_threads(threads)
    out = out or Path("runs") / f"student-{recipe_path.stem}"
    config = TrainConfig.for_finetuning(epochs)
    with progress_bar() as progress:
        metrics = evaluate(
            recipe, teacher, out, data=data, split=split, train_config=config, progress=progress
        )
    acc, lat, size = metrics["accuracy"], metrics["latency_ms"], metrics["file_bytes"]
    formats: dict[str, int] = {}
    for layer in metrics["layers"].values():
        formats[layer["format"]] = formats.get(layer["format"], 0) + 1
    table = Table(title=f"student: {out}", show_header=False)
    for key, value in (
        (
            "test accuracy",
            f"{acc['test']:.2%} (teacher {acc['teacher_test']:.2%}, ONNX {acc['onnx_test']:.2%})",
        ),
        ("parameters", f"{metrics['params']['student']:,} (teacher {metrics['params']['teacher']:,})"),
        ("MACs per clip", f"{metrics['macs']['student']:,} (teacher {metrics['macs']['teacher']:,})"),
        ("ONNX file", f"{size['student']:,} bytes (teacher {size['teacher']:,})"),
        (
            "ORT latency",
            f"{lat['student']:.3f} ms (teacher {lat['teacher']:.3f} ms, {lat['threads']} thread)",
        ),
        ("layer formats", ", ".join(f"{k} x{v}" for k, v in sorted(formats.items()))),
    ):
        table.add_row(key, value)
    Console().print(table)


def _print_report(metrics: dict[str, Any], out: Path) -> None:
    table = Table(title=f"teacher: {out}", show_header=False)
    acc, model, onnx = metrics["accuracy"], metrics["model"], metrics["onnx"]
    rows = [
        ("split", f"{metrics['data']['split']} {metrics['data']['sizes']}"),
        ("test accuracy", f"{acc['test']:.2%} (validation {acc['validation']:.2%})"),
        ("parameters", f"{model['params']:,}"),
        ("MACs per clip", f"{model['macs']:,}"),
        (
            "ONNX file",
            f"{onnx['bytes']:,} bytes, test accuracy {onnx['test_accuracy']:.2%}, "
            f"max |logit diff| vs PyTorch {onnx['max_abs_logit_diff']:.2e}",
        ),
        *(
            (
                f"ORT latency, {k.replace('_', ' ')}",
                f"{v['latency_ms']:.3f} ms "
                f"(p10 {v['p10_ms']:.3f}, p90 {v['p90_ms']:.3f}, {v['repeats']} runs)",
            )
            for k, v in metrics["latency_ms"].items()
        ),
        (
            "training",
            f"{metrics['training']['epochs_run']} epochs, best {metrics['training']['best_epoch']}, "
            f"{metrics['training']['seconds']:.0f} s",
        ),
    ]
    for key, value in rows:
        table.add_row(key, value)
    Console().print(table)
