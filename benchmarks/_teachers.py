"""The teachers benchmarks train once and reuse: `paretone train`'s own path, into the benchmark's
own folder (reused when its weights are there)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from paretone.audio import Catalog, FrontEndConfig
from paretone.models import family_named
from paretone.tasks import CLASSIFICATION, Task
from paretone.training import TrainConfig, train_teacher


def trained_teacher(
    catalog: Catalog,
    split: str,
    out: Path,
    epochs: int,
    *,
    family: str = "ast",
    task: Task = CLASSIFICATION,
    front_end: FrontEndConfig | None = None,
    **sizes: Any,
) -> Path:
    """``out``, holding a ``family`` teacher trained ``epochs`` on ``split`` (trained now if absent)."""
    if not (out / "weights.safetensors").is_file():
        config = family_named(family).teacher_config(
            num_classes=len(catalog.labels), front_end=front_end or FrontEndConfig(), **sizes
        )
        train_teacher(
            catalog=catalog,
            split=split,
            model_config=config,
            train_config=TrainConfig(epochs=epochs),
            out_dir=out,
            task=task,
            latency_threads=(1,),
            overwrite=True,  # the benchmark's own folder
        )
    return out


def existing_teacher(given: Path | None) -> Path:
    """``given``, or the first teacher an earlier benchmark or `paretone train` left: benchmarks
    that only measure the machinery (not the teacher's accuracy) reuse one instead of training."""
    found = (
        [given]
        if given
        else [*sorted(Path("runs/bench-search").glob("*/teacher*")), Path("runs/teacher-ast-default")]
    )
    for path in found:
        if (path / "config.json").is_file():
            return path
    sys.exit("no teacher: pass --teacher DIR (or run `paretone train` first)")
