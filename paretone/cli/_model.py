"""Commands about data, training and compressing one model: data, train, compress."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from paretone.cli._common import cli, data_options, progress_bar


@cli.group(invoke_without_command=True)
@data_options
@click.option("--check", is_flag=True, help="Also decode every audio file.")
@click.pass_context
def data(ctx: click.Context, data: Path | None, layout: str, split: str, check: bool) -> None:
    """Describe a dataset, its audio format and its train/validation/test split
    (`paretone data mix` builds a polyphonic set from FSDD)."""
    if ctx.invoked_subcommand is not None:
        return
    from paretone.audio import audio_format, load_splits, make_splits, open_dataset
    from paretone.tasks import task_for

    catalog = open_dataset(data, layout)
    splits = make_splits(catalog, split)
    fmt = audio_format(catalog.clips)
    task = task_for(catalog)
    click.echo(
        f"{catalog.root}: {catalog.layout} layout, {len(catalog.clips)} clips, "
        f"{len(catalog.labels)} classes ({', '.join(catalog.labels)}), task {task.name}"
    )
    note = f" ({fmt.note()})" if fmt.note() else ""
    click.echo(f"audio: {fmt.sample_rate} Hz, {fmt.clip_seconds:g} s clips{note}")
    if catalog.speakers:
        click.echo(f"speakers: {', '.join(catalog.speakers)}")
    sizes = splits.sizes()
    click.echo(f"split {splits.name}: " + ", ".join(f"{k} {v}" for k, v in sizes.items()))
    if check:
        with progress_bar() as progress:
            encode = task.encode_targets
            load_splits(splits, catalog.labels, fmt.front_end(), encode=encode, progress=progress)
        click.echo(f"all {sum(sizes.values())} files decoded")


@data.command("mix")
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=None,
    help="FSDD folder (default: $PARETONE_DATA, then ../shared/data/fsdd).",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for the new set.")
@click.option("--clips", default=3000, show_default=True, help="Number of mixtures.")
@click.option("--seconds", default=2.0, show_default=True, help="Length of each mixture.")
@click.option("--max-events", default=3, show_default=True, help="Most digits per mixture (1 or more).")
@click.option("--snr-db", default="5,20", show_default=True, help="Event-to-noise ratio range, low,high.")
@click.option(
    "--long-minutes", default=2.0, show_default=True, help="Length of each long recording (0: none)."
)
@click.option("--seed", default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace the files an earlier paretone run wrote in --out.")
def mix(
    data: Path | None,
    out: Path,
    clips: int,
    seconds: float,
    max_events: int,
    snr_db: str,
    long_minutes: float,
    seed: int,
    overwrite: bool,
) -> None:
    """Mix 1-3 FSDD digits per clip over noise, with strong labels (see paretone/audio/_mix.py).

    Writes mixtures.csv (path,labels,fold,speaker: train on it with `paretone train --data`),
    events.csv (onset, offset, label of every event), clips/ and long/ recordings, mix.json.
    """
    from paretone._outputs import OutputFolder
    from paretone.audio import open_dataset
    from paretone.audio._mix import MIX_ENTRIES, MixSettings, mix_dataset
    from paretone.errors import ConfigError

    try:
        low, high = (float(v) for v in snr_db.split(","))
    except ValueError:
        raise ConfigError(f"--snr-db {snr_db!r}: give low,high in dB, e.g. 5,20") from None
    settings = MixSettings(
        clips=clips, seconds=seconds, max_events=max_events, snr_db=(low, high),
        long_minutes=long_minutes, seed=seed,
    )  # fmt: skip
    catalog = open_dataset(data, "fsdd")
    folder = OutputFolder.claim(
        out, command="data mix", entries=MIX_ENTRIES, overwrite=overwrite, inputs=(catalog.root,)
    )
    with progress_bar() as progress:
        bar = progress.add_task("mixing", total=None)
        summary = mix_dataset(
            catalog,
            folder.begin(),
            settings,
            progress=lambda done, total: progress.update(bar, completed=done, total=total),
        )
    click.echo(
        f"{out}: {summary['clips']} mixtures ({summary['events']} events, folds "
        f"{summary['clips_per_fold']}), {len(summary['long_recordings'])} long recordings; "
        f"train with `paretone train --data {out / 'mixtures.csv'}`"
    )


def _size_options(func: Any) -> Any:
    """One ``--NAME`` option per size setting any registered family declares (``Family.size_options``)."""
    from paretone.models import FAMILIES

    seen: dict[str, list[str]] = {}
    specs = {}
    for family in FAMILIES.values():
        for option in family.size_options:
            seen.setdefault(option.name, []).append(family.name)
            specs.setdefault(option.name, option)
    for name in reversed(sorted(specs)):
        option, owners = specs[name], seen[name]
        default = ",".join(map(str, option.default)) if option.type is tuple else option.default
        func = click.option(
            f"--{name.replace('_', '-')}",
            name,
            type=str if option.type is tuple else option.type,
            default=None,
            help=f"{option.help} [{'/'.join(owners)}; default {default}]",
        )(func)
    return func


def _sizes(family_name: str, given: dict[str, Any]) -> dict[str, Any]:
    from paretone.errors import ConfigError
    from paretone.models import family_named

    family = family_named(family_name)
    own = {o.name: o for o in family.size_options}
    sizes = {}
    for name, value in given.items():
        if value is None:
            continue
        if name not in own:
            raise ConfigError(f"--{name.replace('_', '-')} is not a size of the {family_name} family")
        if own[name].type is tuple:
            try:
                value = tuple(int(c) for c in str(value).split(","))
            except ValueError:
                flag = f"--{name.replace('_', '-')}"
                raise ConfigError(f"{flag} {value!r}: give whole numbers separated by commas") from None
        sizes[name] = value
    return sizes


def _families() -> list[str]:
    from paretone.models import FAMILIES

    return sorted(FAMILIES)


@cli.command(context_settings={"ignore_unknown_options": False})
@data_options
@click.option("--model", "family", type=click.Choice(_families()), default="ast", show_default=True)
@_size_options
@click.option("--epochs", default=30, show_default=True)
@click.option("--batch-size", default=32, show_default=True)
@click.option("--lr", default=2e-3, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--threads", default=2, show_default=True, help="CPU threads for training.")
@click.option(
    "--sample-rate",
    type=int,
    default=None,
    help="Input sample rate in Hz (default: the data's most common rate).",
)
@click.option(
    "--clip-seconds",
    type=float,
    default=None,
    help="Input clip length (default: the data's longest clip, the longest 1% may be cut, at most 10 s).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Output folder (default: runs/teacher-<model>-<split>).",
)
@click.option("--overwrite", is_flag=True, help="Replace the files an earlier paretone run wrote in --out.")
def train(
    data: Path | None,
    layout: str,
    split: str,
    family: str,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    threads: int,
    sample_rate: int | None,
    clip_seconds: float | None,
    out: Path | None,
    overwrite: bool,
    **sizes: Any,
) -> None:
    """Train a teacher, save it (safetensors + JSON), export it to ONNX and report it.

    Single-label or multi-label follows the data (a manifest with a labels column is multi-label).
    """
    from paretone import api

    out = out or api.teacher_folder(family, split)
    with progress_bar() as progress:
        metrics = api.train(
            data=data,
            layout=layout,
            split=split,
            model=family,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            threads=threads,
            sample_rate=sample_rate,
            clip_seconds=clip_seconds,
            out=out,
            overwrite=overwrite,
            progress=progress,
            notify=lambda line: click.echo(f"note: {line}", err=True),
            **_sizes(family, sizes),
        )
    _print_report(metrics, out)


@cli.command()
@click.option("--teacher", type=click.Path(path_type=Path), required=True, help="Teacher folder.")
@click.option(
    "--recipe",
    "recipe_path",
    type=click.Path(path_type=Path),
    required=True,
    help="Recipe JSON (format paretone.recipe/2; paretone.recipe/1 still reads).",
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
@click.option("--overwrite", is_flag=True, help="Replace the files an earlier paretone run wrote in --out.")
def compress(
    teacher: Path,
    recipe_path: Path,
    data: Path | None,
    split: str | None,
    epochs: int,
    threads: int,
    out: Path | None,
    overwrite: bool,
) -> None:
    """Compress a teacher by a recipe, distil, export with real low-bit kernels and report."""
    import torch

    from paretone._io import read_json
    from paretone.compress import Recipe
    from paretone.errors import ConfigError
    from paretone.evaluators import claim_student_folder, evaluate
    from paretone.models import read_header
    from paretone.training import TrainConfig

    data_ = read_json(recipe_path, missing="pass an existing recipe file", fix="fix or re-write the recipe")
    if threads < 1 or epochs < 1:
        raise ConfigError("--threads and --epochs must be >= 1")
    config = read_header(teacher)[0]
    try:
        recipe = Recipe.from_dict(data_)
        recipe.check(recipe.base_structure(config))
    except ConfigError as exc:
        raise ConfigError(f"{recipe_path}: {exc}") from None
    out = out or Path("runs") / f"student-{recipe_path.stem}"
    folder = claim_student_folder(out, teacher_dir=teacher, overwrite=overwrite)
    torch.set_num_threads(threads)
    train_config = TrainConfig.for_finetuning(epochs)
    with progress_bar() as progress:
        metrics = evaluate(
            recipe, teacher, folder, data=data, split=split, train_config=train_config, progress=progress
        )
    metric = next(k for k, v in metrics.items() if isinstance(v, dict) and "onnx_test" in v)
    score, lat, size = metrics[metric], metrics["latency_ms"], metrics["file_bytes"]
    formats: dict[str, int] = {}
    for layer in metrics["layers"].values():
        formats[layer["format"]] = formats.get(layer["format"], 0) + 1
    table = Table(title=f"student: {out}", show_header=False)
    for key, value in (
        (
            f"test {metric}",
            f"{score['test']:.2%} (teacher {score['teacher_test']:.2%}, ONNX {score['onnx_test']:.2%})",
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


def _clip_seconds(model: dict[str, Any]) -> float:
    fe = model["config"]["front_end"]
    return fe["clip_samples"] / fe["sample_rate"]


def _print_report(metrics: dict[str, Any], out: Path) -> None:
    from paretone.tasks import task_named

    metric = task_named(metrics["task"]).metric
    table = Table(title=f"teacher: {out}", show_header=False)
    score, model, onnx = metrics[metric], metrics["model"], metrics["onnx"]
    rows = [
        ("split", f"{metrics['data']['split']} {metrics['data']['sizes']}"),
        (f"test {metric}", f"{score['test']:.2%} (validation {score['validation']:.2%})"),
        *(
            (f"test {name.removeprefix('test_')}", f"{metrics[name]:.2%} (thresholds tuned on validation)")
            for name in ("test_f1_micro", "test_f1_macro")
            if name in metrics
        ),
        ("input", f"{model['config']['front_end']['sample_rate']} Hz, {_clip_seconds(model):g} s clips"),
        ("parameters", f"{model['params']:,}"),
        ("MACs per clip", f"{model['macs']:,}"),
        (
            "ONNX file",
            f"{onnx['bytes']:,} bytes, test {metric} {onnx[f'test_{metric}']:.2%}, "
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
