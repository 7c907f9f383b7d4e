"""``paretone pareto``, ``paretone pick`` and ``paretone run-model``: from a study to a model in use."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from paretone.cli._common import cli, console
from paretone.errors import ConfigError

STUDY_HELP = "Study name (as given to `paretone search`)."
DEFAULT_STUDY = "search-teacher-ast-default"  # what `paretone search` names the default teacher's study
STORAGE_HELP = "Study storage URL [default: journal:runs/STUDY/study.log, or its study.db if there]."


@cli.command()
@click.option("--study", default=DEFAULT_STUDY, show_default=True, help=STUDY_HELP)
@click.option("--storage", default=None, help=STORAGE_HELP)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Plots here [runs/STUDY].")
@click.option(
    "--pick", "pick_dir", type=click.Path(path_type=Path), default=None, help="Show a pick's measured models."
)
def pareto(study: str, storage: str | None, out: Path | None, pick_dir: Path | None) -> None:
    """Print the feasible Pareto front; write pareto.png, pareto.html and hypervolume.csv."""
    from paretone.api import study_storage
    from paretone.search import study_folder
    from paretone.ship import REPORT_FILE, pareto_report

    url = study_storage(study, storage)
    out = out or study_folder(url) or Path("runs") / study
    pick_json = (pick_dir or out / "pick") / REPORT_FILE
    report = pareto_report(study, url, out, pick_report=pick_json)
    budget = f"{report.budget_ms:.3f} ms" if report.budget_ms else "none"
    table = Table(title=f"study {study}: feasible Pareto front (budget {budget}, predicted costs)")
    for column in (
        "trial",
        f"val. {report.metric}",
        "latency ms",
        "peak MB",
        "file MB",
        "MMACs",
        "params",
        "recipe",
    ):
        table.add_column(column, justify="left" if column == "recipe" else "right")
    for c in report.front:
        table.add_row(
            str(c.trial),
            f"{c.score:.2%}",
            f"{c.latency_ms:.3f}",
            f"{c.peak_bytes / 1e6:.2f}",
            f"{c.model_bytes / 1e6:.2f}",
            f"{c.macs / 1e6:.1f}",
            f"{c.params:,}",
            report.summaries.get(c.trial, ""),
        )
    click.echo(
        f"{len(report.pool)} fine-tuned trials, {sum(c.feasible for c in report.pool)} feasible, "
        f"front {len(report.front)}; hypervolume {report.history[-1][1] if report.history else 0:.4f}"
    )
    Console(width=160).print(table)
    click.echo("wrote " + ", ".join(str(p) for p in report.files.values()))


@cli.command()
@click.option("--study", default=DEFAULT_STUDY, show_default=True, help=STUDY_HELP)
@click.option("--storage", default=None, help=STORAGE_HELP)
@click.option(
    "--latency-limit-ms", type=float, default=None, help="Measured latency to meet [the study's budget]."
)
@click.option(
    "--latency-limit-fraction",
    type=float,
    default=None,
    help="Or: this fraction of the teacher's latency, measured beside each candidate.",
)
@click.option("--latency-budget-ms", "old_ms", type=float, default=None, hidden=True)
@click.option("--latency-budget-fraction", "old_fraction", type=float, default=None, hidden=True)
@click.option("--memory-budget-mb", type=float, default=None, help="Predicted peak memory bound (MB).")
@click.option("--size-budget-mb", type=float, default=None, help="Predicted ONNX file size bound (MB).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Model folder [runs/STUDY/pick].")
@click.option("--final-epochs", type=int, default=0, show_default=True, help="Fine-tune anew this long.")
@click.option("--attempts", type=int, default=3, show_default=True, help="Candidates to try if over budget.")
@click.option("--threads", type=int, default=1, show_default=True, help="ONNX Runtime threads.")
@click.option("--overwrite", is_flag=True, help="Replace the files an earlier pick wrote in --out.")
@click.option(
    "--profile-dir", type=click.Path(path_type=Path), default=None, help="Device profiles [runs/devices]."
)
def pick(
    study: str,
    storage: str | None,
    latency_limit_ms: float | None,
    latency_limit_fraction: float | None,
    old_ms: float | None,
    old_fraction: float | None,
    memory_budget_mb: float | None,
    size_budget_mb: float | None,
    out: Path | None,
    final_epochs: int,
    attempts: int,
    threads: int,
    overwrite: bool,
    profile_dir: Path | None,
) -> None:
    """Export the most accurate Pareto model within the budget, measure it, write its model card."""
    from paretone import api
    from paretone.ship import PICKED

    if old_ms is not None or old_fraction is not None:
        old, new = ("--latency-budget-ms", "--latency-limit-ms") if old_ms is not None else (
            "--latency-budget-fraction", "--latency-limit-fraction")  # fmt: skip
        raise ConfigError(f"pick measures: {old} is the search's predicted budget; give pick {new} instead")
    report = api.pick(
        study=study,
        storage=storage,
        latency_limit_ms=latency_limit_ms,
        latency_limit_fraction=latency_limit_fraction,
        memory_budget_mb=memory_budget_mb,
        size_budget_mb=size_budget_mb,
        out=out,
        final_epochs=final_epochs,
        attempts=attempts,
        threads=threads,
        overwrite=overwrite,
        profile_dir=profile_dir or api.DEFAULT_PROFILE_DIR,
        progress=lambda message: console.print(message),
    )
    table = Table(title=f"trial {report.trial} within {report.limit_ms:.3f} ms (measured here, side by side)")
    for column in ("model", f"test {report.metric}", "measured ms", "predicted ms", "file MB", "peak MB"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in report.models:
        predicted = f"{report.predicted_latency_ms:.3f}" if row.name == PICKED else "-"
        table.add_row(
            row.name,
            f"{row.test_score:.2%}",
            f"{row.measured_latency_ms:.3f}",
            predicted,
            f"{row.file_bytes / 1e6:.2f}",
            f"{row.peak_bytes / 1e6:.2f}",
        )
    Console(width=160).print(table)
    folder = Path(report.picked.onnx).parent
    click.echo(f"model: {folder / 'model.onnx'}  card: {folder / 'MODEL_CARD.md'}")


@cli.command("run-model")
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("audio", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--threads", type=int, default=1, show_default=True, help="ONNX Runtime threads.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file (per segment with --stream).")
@click.option(
    "--stream",
    is_flag=True,
    help="Run over recordings of any length (or 16-bit PCM on stdin: -): segments, events, real-time factor.",
)
@click.option("--csv", "as_csv", is_flag=True, help="With --stream: CSV rows instead of JSON lines.")
@click.option(
    "--hop-ms", type=float, default=None, help="With --stream, for a model that cannot stream: window hop."
)
def run_model(
    model: Path,
    audio: tuple[Path, ...],
    threads: int,
    as_json: bool,
    stream: bool,
    as_csv: bool,
    hop_ms: float | None,
) -> None:
    """Classify audio files with a model written by `paretone pick` (front-end inside the model)."""
    from paretone.ship import classify_files

    if stream:
        _run_stream(model, audio, threads, as_csv, hop_ms)
        return
    if as_csv or hop_ms is not None:
        raise click.UsageError("--csv and --hop-ms go with --stream")

    results = classify_files(model, list(audio), threads=threads)
    failed = 0
    for result in results:
        if "error" in result:
            failed += 1
            click.echo(f"paretone: error: {result['error']}", err=True)
        elif as_json:
            click.echo(json.dumps(result))
        else:
            found = ";".join(result["labels"]) or "-"
            best = "-" if result["probability"] is None else f"{result['probability']:.3f}"
            click.echo(f"{result['file']}\t{found}\t{best}")
    if failed:
        raise SystemExit(2)


def _run_stream(
    model: Path, audio: tuple[Path, ...], threads: int, as_csv: bool, hop_ms: float | None
) -> None:
    """JSON lines (or CSV rows) per segment as computed, then each event, then the summary."""
    from paretone.ship import stream_recording

    writer = csv.writer(sys.stdout) if as_csv else None
    if writer:
        writer.writerow(["file", "kind", "start_s", "end_s", "label", "probability"])
    for source in audio:
        name = str(source)

        def segment(record: dict, name: str = name) -> None:
            if writer:
                for label, p in record["probabilities"].items():
                    writer.writerow([name, "segment", record["start_s"], record["end_s"], label, p])
            else:
                click.echo(json.dumps({"file": name, "kind": "segment", **record}))

        summary = stream_recording(model, source, threads=threads, hop_ms=hop_ms, on_segment=segment)
        for event in summary.events:
            if writer:
                writer.writerow([name, "event", event.onset_s, event.offset_s, event.label, ""])
            else:
                click.echo(json.dumps({"file": name, "kind": "event", **event.to_dict()}))
        facts = {k: v for k, v in summary.to_dict().items() if k != "events"}
        if writer:
            sys.stdout.flush()
        click.echo(
            f"{name}: {facts['audio_seconds']:.1f} s of audio, {facts['mode']}, real-time factor "
            f"{facts['real_time_factor']:.4f}, {facts['p50_ms']:.3f} ms per call "
            f"(p95 {facts['p95_ms']:.3f}), "
            f"algorithmic delay {facts['algorithmic_delay_ms']:.0f} ms, {len(summary.events)} events",
            err=True,
        )
        if not writer:
            click.echo(json.dumps({"file": name, "kind": "summary", **facts}))
