"""``paretone search``: the joint compression search, from flags or a config file."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import click

from paretone.cli._common import cli, console, progress_bar, stage_bars
from paretone.errors import ConfigError

DEFAULT_TEACHER = Path("runs") / "teacher-ast-default"
SEARCH_KEYS = {
    "teacher", "data", "split", "study", "trials", "latency_budget_ms", "latency_budget_fraction",
    "memory_budget_mb", "workers", "storage", "ray_address", "sampler", "seed", "epochs", "device",
    "profile_dir", "stale_after_s", "worker_memory_mb", "size_budget_mb",
}  # fmt: skip


def _read_config(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``[search]`` and ``[space]`` tables of a TOML or JSON config file."""
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot parse ({exc})") from None
    unknown = set(data) - {"search", "space"}
    search, space = data.get("search", {}), data.get("space", {})
    if unknown or not isinstance(search, dict) or not isinstance(space, dict):
        raise ConfigError(f"{path}: expected only [search] and [space] tables")
    bad = set(search) - SEARCH_KEYS
    if bad:
        raise ConfigError(f"{path}: unknown [search] settings {', '.join(sorted(bad))}")
    return search, space


@cli.command()
@click.option(
    "--config", "config_path", type=click.Path(path_type=Path), default=None, help="TOML/JSON file."
)
@click.option(
    "--teacher", type=click.Path(path_type=Path), default=None, help=f"[default: {DEFAULT_TEACHER}]"
)
@click.option("--data", type=click.Path(path_type=Path), default=None, help="Default: the teacher's data.")
@click.option("--split", default=None, help="Default: the teacher's split.")
@click.option("--study", default=None, help="Study name [default: search-<teacher folder>].")
@click.option("--trials", type=int, default=None, help="Finished trials to reach [default: 12].")
@click.option("--latency-budget-ms", type=float, default=None, help="Predicted latency budget (ms).")
@click.option(
    "--latency-budget-fraction",
    type=float,
    default=None,
    help="Budget as a fraction of the teacher's [0.75].",
)
@click.option("--memory-budget-mb", type=float, default=None, help="Peak working memory budget (MB).")
@click.option("--size-budget-mb", type=float, default=None, help="ONNX file size budget (MB).")
@click.option("--workers", type=int, default=None, help="Parallel fine-tuning workers [default: 1].")
@click.option("--storage", default=None, help="sqlite:///F.db, postgresql://..., journal:F.log [runs/STUDY].")
@click.option("--ray-address", default=None, help="Join an existing Ray cluster (default: local Ray).")
@click.option("--sampler", type=click.Choice(["nsga2", "tpe", "gp", "random"]), default=None, help="[nsga2]")
@click.option("--seed", type=int, default=None, help="Sampler seed [default: 0].")
@click.option("--epochs", type=int, default=None, help="Fine-tuning epochs per trial [default: 2].")
@click.option("--device", default=None, help="Device profile [default: local, calibrated if missing].")
@click.option("--profile-dir", type=click.Path(path_type=Path), default=None, help="[runs/devices]")
@click.option(
    "--stale-after-s",
    type=float,
    default=None,
    help="A RUNNING trial silent this long counts as dead and is retried once [60].",
)
@click.option(
    "--worker-memory-mb", type=float, default=None, help="Memory per worker, enforced per trial [3072]."
)
@click.option("--resume", is_flag=True, help="Continue the study to --trials after a crash or Ctrl-C.")
def search(config_path: Path | None, resume: bool, **flags: Any) -> None:
    """Search compressions of a teacher for the most accurate models within a latency budget."""
    from paretone.search import Budget, SearchSettings, default_storage, run_search
    from paretone.spaces import SpaceConfig

    file_search, file_space = _read_config(config_path) if config_path else ({}, {})
    merged = {**file_search, **{k: v for k, v in flags.items() if v is not None}}
    teacher = Path(merged.get("teacher", DEFAULT_TEACHER))
    if not (teacher / "config.json").is_file():
        raise ConfigError(
            f"{teacher}: no teacher there; train one with `paretone train` or pass --teacher DIR"
        )
    study = str(merged.get("study", f"search-{teacher.name}"))
    settings = SearchSettings(
        teacher=teacher,
        study=study,
        storage=str(merged.get("storage") or default_storage(study)),
        trials=int(merged.get("trials", 12)),
        budget=Budget(
            latency_ms=merged.get("latency_budget_ms"),
            latency_fraction=merged.get("latency_budget_fraction"),
            memory_mb=merged.get("memory_budget_mb"),
            size_mb=merged.get("size_budget_mb"),
        ),
        workers=int(merged.get("workers", 1)),
        ray_address=merged.get("ray_address"),
        sampler=str(merged.get("sampler", "nsga2")),
        seed=int(merged.get("seed", 0)),
        resume=resume,
        data=Path(merged["data"]) if merged.get("data") else None,
        split=merged.get("split"),
        epochs=int(merged.get("epochs", 2)),
        space=SpaceConfig.from_dict(file_space),
        stale_after_s=float(merged.get("stale_after_s", 60.0)),
        worker_memory_mb=float(merged.get("worker_memory_mb", 3072.0)),
    )
    device = str(merged.get("device", "local"))
    with progress_bar() as progress:
        calibration = stage_bars(progress, prefix=f"calibrating {device}: ")
        task = progress.add_task("trials", total=settings.trials)

        def status(s: dict[str, Any]) -> None:
            best = "-" if s["best_feasible_accuracy"] is None else f"{s['best_feasible_accuracy']:.2%}"
            progress.update(
                task,
                completed=s["finished"],
                description=(
                    f"trials (running {s['running']}, failed {s['failed']}, screened {s['screened']}, "
                    f"front {s['front']}, best feasible {best})"
                ),
            )

        try:
            summary = run_search(
                settings,
                device=device,
                profile_dir=Path(merged.get("profile_dir", "runs/devices")),
                status=status,
                calibration_progress=calibration,
            )
        except KeyboardInterrupt:
            console.print(f"interrupted: finished trials are kept; continue with --study {study} --resume")
            raise SystemExit(130) from None
    best = "none" if summary.best_feasible_accuracy is None else f"{summary.best_feasible_accuracy:.2%}"
    click.echo(
        f"study {summary.study}: {summary.fine_tuned} fine-tuned, {summary.screened} screened out by "
        f"predicted cost, {summary.failed} failed, Pareto front {summary.front}, best accuracy within "
        f"{summary.budget_ms:.2f} ms: {best}; {summary.seconds:.0f} s; results in {summary.storage}"
    )
