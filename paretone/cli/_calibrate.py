"""``paretone calibrate``: measure a device, write a kit for a remote one, import it, validate."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from paretone.api import DEFAULT_PROFILE_DIR, calibration_teacher
from paretone.cli._common import cli, progress_bar, stage_bars
from paretone.errors import ConfigError

if TYPE_CHECKING:
    from paretone.hw_models import CalibrationSummary, ValidationReport

KIT_ENTRIES = ("manifest.json", "baseline.onnx", "kernels", "models", "run_kit.py", "results.json")


@cli.command()
@click.option("--device", default=None, help="Device profile name (a folder under --profile-dir).")
@click.option(
    "--teacher",
    "teacher_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Teacher folder whose compressions to cover (default: the default AST, 10 classes).",
)
@click.option("--threads", default=1, show_default=True, help="ONNX Runtime intra-op threads.")
@click.option(
    "--models",
    default=None,
    type=int,
    help="Random compressed whole models to measure [calibration: 12, --validate: 40].",
)
@click.option("--passes", default=5, show_default=True, help="Interleaved timing passes per model.")
@click.option(
    "--profile-dir",
    type=click.Path(path_type=Path),
    default=DEFAULT_PROFILE_DIR,
    show_default=True,
    help="Where device profiles live.",
)
@click.option("--kit", "kit_dir", type=click.Path(path_type=Path), default=None, help="Write a kit to DIR.")
@click.option(
    "--import",
    "import_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Import a kit's results.json into --device's profile.",
)
@click.option("--validate", is_flag=True, help="Measure held-out models here and report prediction error.")
@click.option("--report", type=click.Path(path_type=Path), default=None, help="--validate: write JSON here.")
@click.option("--overwrite", is_flag=True, help="--validate: replace an existing --report file.")
def calibrate(
    device: str | None,
    teacher_dir: Path | None,
    threads: int,
    models: int | None,
    passes: int,
    profile_dir: Path,
    kit_dir: Path | None,
    import_file: Path | None,
    validate: bool,
    report: Path | None,
    overwrite: bool,
) -> None:
    """Calibrate latency and memory predictors by real ONNX Runtime measurements.

    \b
    paretone calibrate --device laptop              measure this machine (re-running extends)
    paretone calibrate --kit DIR                    kit for another device (onnxruntime + numpy)
    paretone calibrate --device phone --import F    import the kit's results.json
    paretone calibrate --device laptop --validate   held-out accuracy of the predictors
    """
    from paretone import hw_models
    from paretone._io import write_json
    from paretone._outputs import OutputFolder

    if sum(x is not None and x is not False for x in (kit_dir, import_file, validate or None)) > 1:
        raise ConfigError("use one of --kit, --import and --validate at a time")
    if threads < 1 or passes < 1 or (models is not None and models < 0):
        raise ConfigError("--threads and --passes must be >= 1 and --models >= 0")
    if kit_dir is None and device is None:
        raise ConfigError("name the device: --device NAME (e.g. --device laptop)")
    if report is not None and (not validate or (report.exists() and not overwrite)):
        raise ConfigError(
            f"--report {report}: it exists (pass --overwrite to replace it)"
            if validate
            else "--report goes with --validate"
        )
    if kit_dir is not None:
        folder = OutputFolder.claim(
            kit_dir, command="calibrate --kit", entries=KIT_ENTRIES, replace_own=True, option="--kit"
        )
        teacher = calibration_teacher(teacher_dir)
        folder.begin()
        with progress_bar() as progress:
            kit = hw_models.write_kit(
                kit_dir,
                kernels=hw_models.calibration_kernels(teacher.config),
                teacher=teacher,
                models=hw_models.random_models(
                    teacher, 12 if models is None else models, seed=0, prefix="calibration"
                ),
                threads=threads,
                passes=passes,
                progress=stage_bars(progress),
            )
        click.echo(
            f"kit written to {kit}: copy it to the device, run `python run_kit.py` there (needs onnxruntime "
            f"and numpy), then `paretone calibrate --device NAME --import results.json`"
        )
        return
    assert device is not None
    if import_file is not None:
        summary = hw_models.import_results(import_file, device=device, profile_dir=profile_dir)
        _print_summary(summary, "imported")
        return
    if validate:
        path = hw_models.profile_path(profile_dir, device)
        profile = hw_models.DeviceProfile.load(path)
        with progress_bar() as progress:
            result = hw_models.validate(
                profile,
                calibration_teacher(teacher_dir),
                models=40 if models is None else models,
                passes=passes,
                probe_dir=path.parent,
                progress=stage_bars(progress),
            )
        _print_validation(result)
        if report is not None:
            write_json(report, result.to_dict())
        return
    with progress_bar() as progress:
        summary = hw_models.calibrate(
            device=device,
            profile_dir=profile_dir,
            teacher=calibration_teacher(teacher_dir),
            threads=threads,
            models=12 if models is None else models,
            passes=passes,
            progress=stage_bars(progress),
        )
    _print_summary(summary, "calibrated")


def _print_summary(summary: CalibrationSummary, verb: str) -> None:
    click.echo(
        f"{verb} {summary.profile}: +{summary.kernels_added} kernels, +{summary.models_added} whole models "
        f"(now {summary.kernels_total} and {summary.models_total}) in {summary.seconds:.0f} s"
    )


def _print_validation(result: ValidationReport) -> None:
    table = Table(title=f"device {result.device}: {result.models} held-out models, {result.seconds:.0f} s")
    for column in ("prediction", "within 5%", "within 10%", "RMSPE", "worst"):
        table.add_column(column)
    rows = [
        ("latency (calibrated)", result.latency),
        ("latency (speed-corrected by the probe)", result.latency_speed_corrected),
        ("latency (scaled by the probe's whole-model anchors)", result.latency_anchor_corrected),
        ("latency (anchors timed inside every pass)", result.latency_anchored_in_pass),
        ("latency (after refit on re-measured)", result.latency_after_refit),
        ("latency (MACs proxy)", result.macs_proxy_latency),
        ("file bytes (calibrated)", result.model_bytes),
        ("file bytes (params proxy)", result.params_proxy_bytes),
        ("peak memory (calibrated)", result.peak_bytes),
        ("ONNX Runtime tensor peak (calibrated)", result.tensor_peak_bytes),
    ]
    for name, stats in rows:
        if stats is not None:
            table.add_row(
                name,
                f"{stats.within_5pct:.0%}",
                f"{stats.within_10pct:.0%}",
                f"{stats.rmspe_pct:.1f}%",
                f"{stats.worst_pct:+.1f}%",
            )
    Console().print(table)
    if result.drift is not None:
        click.echo(f"drift: calibration models now run at {result.drift:.2f}x their profiled latency")
        if abs(result.drift - 1) > 0.05:
            click.echo(
                "warning: this machine's speed changed since calibration (shared or throttled CPU?); "
                "predictions are for the calibrated state: re-calibrate if the change persists"
            )
    if result.speed is not None:
        factors = result.speed["factors"]
        shown = ", ".join(
            f"{g} {f:.2f}x" for g, f in sorted(factors.items(), key=lambda kv: -abs(kv[1] - 1))[:4]
        )
        click.echo(f"speed probe ({result.speed['seconds']:.2f} s): per group now / at calibration: {shown}")
    else:
        click.echo("no speed probe in this profile: re-run `paretone calibrate` on the device to record one")
    spread = result.memory_spread
    if spread is not None:
        tensors = spread.tensor_peak_range_bytes_median
        click.echo(
            f"memory measured in {spread.processes} fresh processes per model (figures are their mean: "
            "the peak depends on the address-space layout each process draws): peak memory varies by "
            f"{spread.peak_range_bytes_median / 1e6:.2f} MB between them (median), the tensor peak by "
            + ("(not recorded by this onnxruntime)" if tensors is None else f"{tensors / 1e6:.2f} MB")
        )
    if result.within_interval is not None:
        click.echo(f"{result.within_interval:.0%} of the models measured inside their predicted 95% interval")
    if result.coverage < 1:
        click.echo(f"warning: kernel coverage as low as {result.coverage:.0%}: calibrate with --teacher")
    for row in result.worst():
        click.echo(
            f"worst: {row['name']}: measured {row['latency_ms']:.3f} ms, predicted "
            f"{row['predicted_latency_ms']:.3f} ms ({row['latency_error_pct']:+.1f}%)"
        )
