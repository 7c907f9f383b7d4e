"""What the command line does, callable from Python in a few lines.

    import paretone

    paretone.train(out="runs/teacher-ast-default")                  # FSDD beside the checkout
    paretone.calibrate(device="local", teacher="runs/teacher-ast-default")
    summary = paretone.search(teacher="runs/teacher-ast-default", latency_budget_fraction=0.25, workers=2)
    report = paretone.pick(study=summary.study)
    print(report.picked.measured_latency_ms, report.picked.test_score)

Every argument is keyword-only and checked before any work starts; user errors raise
``paretone.errors.ParetoneError`` subclasses whose message says what to fix. Each function is the
one the matching ``paretone`` command calls.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from paretone.errors import ConfigError

RUNS = Path("runs")
DEFAULT_TEACHER = RUNS / "teacher-ast-default"
DEFAULT_PROFILE_DIR = RUNS / "devices"
PathLike = str | os.PathLike[str]
StageProgress = Callable[[str, int, int], None]


def teacher_folder(family: str, split: str) -> Path:
    """Where ``train`` writes by default: ``runs/teacher-<family>-<split>``."""
    return RUNS / f"teacher-{family}-{split.replace(':', '-')}"


def default_study(teacher: PathLike) -> str:
    return f"search-{Path(teacher).name}"


def train(
    *,
    data: PathLike | None = None,
    layout: str = "auto",
    split: str = "default",
    model: str = "ast",
    epochs: int = 30,
    batch_size: int = 32,
    lr: float = 2e-3,
    seed: int = 0,
    threads: int = 2,
    sample_rate: int | None = None,
    clip_seconds: float | None = None,
    out: PathLike | None = None,
    overwrite: bool = False,
    progress: Any = None,
    notify: Callable[[str], None] | None = None,
    **sizes: Any,
) -> dict[str, Any]:
    """Train a teacher of family ``model`` (sizes as its ``size_options``), save, export, report.

    The task follows the data (a manifest with a ``labels`` column is multi-label); the input
    format is the data's own (``audio.audio_format``) unless ``sample_rate``/``clip_seconds`` say
    otherwise; ``notify`` receives one line when clips are cut or resampled."""
    import torch

    from paretone.audio import audio_format, open_dataset
    from paretone.models import family_named
    from paretone.tasks import task_for
    from paretone.training import TrainConfig, claim_teacher_folder, train_teacher

    family = family_named(model)
    known = {o.name for o in family.size_options}
    foreign = set(sizes) - known
    if foreign:
        raise ConfigError(
            f"{', '.join(sorted(foreign))}: not a size of the {model} family "
            f"(its sizes: {', '.join(sorted(known))})"
        )
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"--threads must be a whole number >= 1, got {threads!r}")
    train_config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    folder = claim_teacher_folder(out or teacher_folder(model, split), overwrite=overwrite)
    catalog = open_dataset(data, layout)
    fmt = audio_format(catalog.clips, sample_rate=sample_rate, clip_seconds=clip_seconds)
    if notify is not None and fmt.note():
        notify(fmt.note())
    config = family.teacher_config(num_classes=len(catalog.labels), front_end=fmt.front_end(), **sizes)
    torch.set_num_threads(threads)
    return train_teacher(
        catalog=catalog,
        split=split,
        model_config=config,
        train_config=train_config,
        out_dir=folder,
        task=task_for(catalog),
        progress=progress,
    )


def calibrate(
    *,
    device: str = "local",
    teacher: PathLike | None = None,
    threads: int = 1,
    models: int = 12,
    passes: int = 5,
    profile_dir: PathLike = DEFAULT_PROFILE_DIR,
    progress: StageProgress | None = None,
) -> Any:
    """Measure this machine's kernels and whole models into ``profile_dir/device/profile.json``."""
    from paretone import hw_models

    return hw_models.calibrate(
        device=device,
        profile_dir=profile_dir,
        teacher=calibration_teacher(teacher),
        threads=threads,
        models=models,
        passes=passes,
        progress=progress,
    )


def calibration_teacher(teacher: PathLike | None) -> Any:
    """The teacher whose students are calibrated; untrained weights suffice for timing."""
    from paretone.audio import FrontEndConfig
    from paretone.models import AST_FAMILY, build_model, load_model

    if teacher is None:
        return build_model(AST_FAMILY.teacher_config(num_classes=10, front_end=FrontEndConfig())).eval()
    return load_model(teacher).model.eval()


def search(
    *,
    teacher: PathLike = DEFAULT_TEACHER,
    study: str | None = None,
    storage: str | None = None,
    trials: int = 12,
    latency_budget_ms: float | None = None,
    latency_budget_fraction: float | None = None,
    memory_budget_mb: float | None = None,
    size_budget_mb: float | None = None,
    workers: int = 1,
    ray_address: str | None = None,
    sampler: str = "tpe",
    seed: int = 0,
    epochs: int = 2,
    resume: bool = False,
    data: PathLike | None = None,
    split: str | None = None,
    space: Mapping[str, Any] | None = None,
    device: str = "local",
    profile_dir: PathLike = DEFAULT_PROFILE_DIR,
    stale_after_s: float = 60.0,
    worker_memory_mb: float = 3072.0,
    gpus_per_worker: float = 0.0,
    chunk_ms: float | None = None,
    allocate: bool = False,
    screen_epochs: int = 0,
    promote_fraction: float = 1 / 3,
    probe_every_s: float = 180.0,
    status: Any = None,
    calibration_progress: StageProgress | None = None,
    sensitivity_progress: StageProgress | None = None,
) -> Any:
    """Search compressions of ``teacher`` within the budget (``space``: a ``[space]`` table);
    ``chunk_ms``: on a stream, the latency budget is per chunk of this length (p95);
    ``allocate``: begin also with allocations from the teacher's measured sensitivity;
    ``gpus_per_worker``: fine-tune on CUDA, each worker declaring this many GPUs to Ray;
    ``screen_epochs``: fine-tune every candidate this many epochs first and only the best
    ``promote_fraction`` of them to ``epochs`` (0: off); ``probe_every_s``: screen at the device's
    speed, probed this often (0: at the calibrated speed)."""
    from paretone.search import Budget, Fidelity, SearchSettings, default_storage, run_search
    from paretone.spaces import SpaceConfig

    teacher = Path(teacher)
    if not (teacher / "config.json").is_file():
        raise ConfigError(
            f"{teacher}: no teacher there; train one with `paretone train` or pass --teacher DIR"
        )
    study = study or default_study(teacher)
    settings = SearchSettings(
        teacher=teacher,
        study=study,
        storage=storage or default_storage(study),
        trials=trials,
        budget=Budget(latency_budget_ms, latency_budget_fraction, memory_budget_mb, size_budget_mb),
        workers=workers,
        ray_address=ray_address,
        sampler=sampler,
        seed=seed,
        resume=resume,
        data=None if data is None else Path(data),
        split=split,
        epochs=epochs,
        space=SpaceConfig.from_dict(space or {}),
        stale_after_s=stale_after_s,
        worker_memory_mb=worker_memory_mb,
        gpus_per_worker=gpus_per_worker,
        chunk_ms=chunk_ms,
        allocate=allocate,
        fidelity=Fidelity(screen_epochs=screen_epochs, promote_fraction=promote_fraction),
        probe_every_s=probe_every_s,
    )
    return run_search(
        settings,
        device=device,
        profile_dir=profile_dir,
        status=status,
        calibration_progress=calibration_progress,
        sensitivity_progress=sensitivity_progress,
    )


def study_storage(study: str, storage: str | None) -> str:
    """``storage``, or the default file of ``study`` if it exists (ConfigError if not)."""
    from paretone.search import default_storage, storage_file

    if storage:
        return storage
    url = default_storage(study)
    if not storage_file(url).is_file():
        raise ConfigError(f"study {study!r}: {url} does not exist; pass --storage or run `paretone search`")
    return url


def pick(
    *,
    study: str = default_study(DEFAULT_TEACHER),
    storage: str | None = None,
    latency_limit_ms: float | None = None,
    latency_limit_fraction: float | None = None,
    memory_budget_mb: float | None = None,
    size_budget_mb: float | None = None,
    out: PathLike | None = None,
    final_epochs: int = 0,
    attempts: int = 3,
    threads: int = 1,
    overwrite: bool = False,
    profile_dir: PathLike = DEFAULT_PROFILE_DIR,
    progress: Callable[[str], None] | None = None,
) -> Any:
    """Export the most accurate front member within the budget, measured here beside the teacher."""
    from paretone.search import study_folder
    from paretone.ship import PickSettings
    from paretone.ship import pick as run_pick

    url = study_storage(study, storage)
    settings = PickSettings(
        study=study,
        storage=url,
        out=Path(out) if out is not None else (study_folder(url) or RUNS / study) / "pick",
        latency_limit_ms=latency_limit_ms,
        latency_limit_fraction=latency_limit_fraction,
        memory_budget_mb=memory_budget_mb,
        size_budget_mb=size_budget_mb,
        final_epochs=final_epochs,
        attempts=attempts,
        threads=threads,
        overwrite=overwrite,
        profile_dir=Path(profile_dir),
    )
    return run_pick(settings, progress=progress)
