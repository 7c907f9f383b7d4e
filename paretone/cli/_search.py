"""``paretone search``: the joint compression search, from flags or a config file."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from paretone.api import DEFAULT_PROFILE_DIR, DEFAULT_TEACHER
from paretone.cli._common import cli, console, progress_bar, stage_bars
from paretone.errors import ConfigError

if TYPE_CHECKING:
    from paretone.search import SpeedLog

NUMBER, WHOLE, TEXT, FLAG = "a number", "a whole number", "a string", "true or false"
# the [search] settings of a config file, each with the type it must have
SEARCH_KEYS = {
    "teacher": TEXT, "data": TEXT, "split": TEXT, "study": TEXT, "trials": WHOLE,
    "latency_budget_ms": NUMBER, "latency_budget_fraction": NUMBER, "memory_budget_mb": NUMBER,
    "size_budget_mb": NUMBER, "workers": WHOLE, "storage": TEXT, "ray_address": TEXT, "sampler": TEXT,
    "seed": WHOLE, "epochs": WHOLE, "device": TEXT, "profile_dir": TEXT, "stale_after_s": NUMBER,
    "worker_memory_mb": NUMBER, "gpus_per_worker": NUMBER, "chunk_ms": NUMBER, "allocate": FLAG,
    "screen_epochs": WHOLE, "promote_fraction": NUMBER, "probe_every_s": NUMBER,
}  # fmt: skip


def _typed(path: Path, key: str, value: Any) -> Any:
    expected = SEARCH_KEYS[key]
    ok = {
        NUMBER: isinstance(value, int | float) and not isinstance(value, bool),
        WHOLE: isinstance(value, int) and not isinstance(value, bool),
        TEXT: isinstance(value, str),
        FLAG: isinstance(value, bool),
    }[expected]
    if not ok:
        raise ConfigError(f"{path}: [search] {key} must be {expected}, got {value!r}")
    return value


def read_config(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``[search]`` and ``[space]`` tables of a TOML or JSON config file, type-checked."""
    from paretone._io import parse_json

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc})") from None
    if path.suffix == ".json":
        data = parse_json(text, str(path), fix="fix the config file")
    else:
        try:
            data = tomllib.loads(text)
        except (tomllib.TOMLDecodeError, RecursionError) as exc:
            raise ConfigError(f"{path}: cannot parse ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected [search] and [space] tables")
    unknown = set(data) - {"search", "space"}
    search, space = data.get("search", {}), data.get("space", {})
    if unknown or not isinstance(search, dict) or not isinstance(space, dict):
        raise ConfigError(f"{path}: expected only [search] and [space] tables")
    bad = set(search) - set(SEARCH_KEYS)
    if bad:
        raise ConfigError(f"{path}: unknown [search] settings {', '.join(sorted(bad))}")
    return {k: _typed(path, k, v) for k, v in search.items()}, space


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
    help="Budget as a fraction of the teacher's predicted latency [0.75].",
)
@click.option("--memory-budget-mb", type=float, default=None, help="Peak working memory budget (MB).")
@click.option("--size-budget-mb", type=float, default=None, help="ONNX file size budget (MB).")
@click.option("--workers", type=int, default=None, help="Parallel fine-tuning workers [default: 1].")
@click.option(
    "--storage",
    default=None,
    help="journal:F.log, sqlite:///F.db, postgresql://... [journal:runs/STUDY/study.log].",
)
@click.option("--ray-address", default=None, help="Join an existing Ray cluster (default: local Ray).")
@click.option("--sampler", type=click.Choice(["nsga2", "tpe", "gp", "random"]), default=None, help="[tpe]")
@click.option("--seed", type=int, default=None, help="Sampler seed [default: 0].")
@click.option("--epochs", type=int, default=None, help="Fine-tuning epochs per trial [default: 2].")
@click.option("--device", default=None, help="Device profile [default: local, calibrated if missing].")
@click.option("--profile-dir", type=click.Path(path_type=Path), default=None, help=f"[{DEFAULT_PROFILE_DIR}]")
@click.option(
    "--stale-after-s",
    type=float,
    default=None,
    help="A RUNNING trial silent this long counts as dead and is retried once [60].",
)
@click.option(
    "--worker-memory-mb", type=float, default=None, help="Memory per worker, enforced per trial [3072]."
)
@click.option(
    "--gpus-per-worker",
    type=float,
    default=None,
    help="Fine-tune on CUDA: GPUs each worker declares to Ray (0.5 shares one by two) [0: CPU].",
)
@click.option(
    "--chunk-ms",
    type=float,
    default=None,
    help="Streaming: latency and --latency-budget-* are per chunk of this length (p95 at pick).",
)
@click.option(
    "--allocate",
    is_flag=True,
    default=None,
    help="Begin also with candidates an integer program allocates from the teacher's measured "
    "sensitivity (measured once, cached beside the teacher).",
)
@click.option(
    "--screen-epochs",
    type=int,
    default=None,
    help="Multi-fidelity: fine-tune every candidate this many epochs first, the best to --epochs [0: off].",
)
@click.option(
    "--promote-fraction",
    type=float,
    default=None,
    help="With --screen-epochs: the best fraction of screening scores promoted to --epochs [0.333].",
)
@click.option(
    "--probe-every-s",
    type=float,
    default=None,
    help="Screen at the device's speed, probed (0.6 s) this often; 0: at the calibrated speed [180].",
)
@click.option("--resume", is_flag=True, help="Continue the study to --trials after a crash or Ctrl-C.")
def search(config_path: Path | None, resume: bool, **flags: Any) -> None:
    """Search compressions of a teacher for the most accurate models within a latency budget."""
    from paretone import api
    from paretone.search import (
        PROBE_INTERVAL_S,
        Budget,
        Fidelity,
        SearchProgress,
        SearchSettings,
        default_storage,
    )

    file_search, file_space = read_config(config_path) if config_path else ({}, {})
    merged = {**file_search, **{k: v for k, v in flags.items() if v is not None}}
    teacher = Path(merged.pop("teacher", DEFAULT_TEACHER))
    study = str(merged.pop("study", api.default_study(teacher)))
    storage = str(merged.pop("storage", None) or default_storage(study))
    device = str(merged.pop("device", "local"))
    profile_dir = Path(merged.pop("profile_dir", DEFAULT_PROFILE_DIR))
    trials = merged.pop("trials", 12)
    hint = SearchSettings(
        teacher=teacher,
        study=study,
        storage=storage,
        trials=trials,
        budget=Budget(
            merged.get("latency_budget_ms"),
            merged.get("latency_budget_fraction"),
            merged.get("memory_budget_mb"),
            merged.get("size_budget_mb"),
        ),
        chunk_ms=merged.get("chunk_ms"),
        gpus_per_worker=merged.get("gpus_per_worker", 0.0),
        probe_every_s=merged.get("probe_every_s", PROBE_INTERVAL_S),
        fidelity=Fidelity(
            screen_epochs=merged.get("screen_epochs", 0),
            promote_fraction=merged.get("promote_fraction", 1 / 3),
        ),
    ).resume_hint()
    with progress_bar() as progress:
        calibration = stage_bars(progress, prefix=f"calibrating {device}: ")
        sensitivity = stage_bars(progress, prefix="measuring ")
        task = progress.add_task("trials", total=trials)

        def status(s: SearchProgress) -> None:
            best = "-" if s.best_score is None else f"{s.best_score:.2%}"
            progress.update(
                task,
                completed=s.finished,
                description=(
                    f"trials (running {s.running}, failed {s.failed}, screened {s.screened}, "
                    f"front {s.front}, best feasible {best})"
                ),
            )

        try:
            summary = api.search(
                teacher=teacher,
                study=study,
                storage=storage,
                trials=trials,
                resume=resume,
                space=file_space,
                device=device,
                profile_dir=profile_dir,
                status=status,
                calibration_progress=calibration,
                sensitivity_progress=sensitivity,
                **merged,
            )
        except KeyboardInterrupt:
            console.print(f"interrupted: finished trials are kept; continue with\n  {hint}")
            raise SystemExit(130) from None
    best = "none" if summary.best_score is None else f"{summary.best_score:.2%}"
    click.echo(
        f"study {summary.study}: {summary.fine_tuned} fine-tuned, {summary.screened} screened out by "
        f"predicted cost, {summary.failed} failed, Pareto front {summary.front}, best score within "
        f"{summary.budget.describe()}: {best}; {summary.seconds:.0f} s; results in {summary.storage}"
    )
    if summary.partial_fidelity:
        click.echo(
            f"multi-fidelity: {summary.partial_fidelity} of the {summary.fine_tuned} fine-tuned stopped "
            "after screening (kept in the study, not on the front)"
        )
    if summary.front_origins:
        origins = ", ".join(f"{count} {where}" for where, count in sorted(summary.front_origins.items()))
        click.echo(f"front members proposed by: {origins}")
    if summary.allocations is not None:
        click.echo(
            f"allocations from sensitivity: {summary.allocations}"
            + ("" if summary.allocations else " (none fits the budget as a whole candidate)")
            + (
                f"; sensitivity {summary.sensitivity_seconds:.1f} s, integer programs "
                f"{summary.allocation_seconds:.1f} s"
                if summary.sensitivity_seconds or summary.allocation_seconds  # 0 on a resumed study
                else ""
            )
        )
    click.echo(speed_line(summary.speed))
    if summary.most_sensitive:
        click.echo("most sensitive single changes (output divergence from the teacher, no fine-tuning):")
        for line in summary.most_sensitive:
            click.echo(f"  {line}")


def speed_line(log: SpeedLog) -> str:
    """What the search's speed probes read (a ``search.SpeedLog``), or why it did not probe."""
    if log.probes == 0:
        return f"screened at the calibrated speed: {log.not_probed or 'not probed'}"
    read = f"{log.lowest:.2f}x" if log.lowest == log.highest else f"{log.lowest:.2f}-{log.highest:.2f}x"
    return (
        f"screened at the device's speed: {log.probes} probe{'s' * (log.probes > 1)} "
        f"({log.seconds:.1f} s) read {read} its calibrated kernel times"
    )
