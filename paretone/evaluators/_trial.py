"""Search trials: a teacher and its data held in memory, evaluating one recipe after another.

A search worker (a Ray actor) owns one ``TrialEvaluator``, so the teacher is loaded and its
logits computed once per worker, not once per trial; the audio arrives decoded (``DecodedAudio``,
from the driver through Ray's object store). Arguments and results are plain (recipe dicts, paths,
floats, arrays): nothing here knows Ray or Optuna.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import Progress

from paretone.audio import Splits, SplitSets, load_splits, make_splits, open_dataset
from paretone.compress import Recipe, StudentArchitecture, apply, save_student, teacher_logits
from paretone.errors import CheckpointError, ConfigError
from paretone.evaluators._students import distilled_student
from paretone.models import AudioModel, LoadedModel, count_complexity, load_model
from paretone.tasks import Task, task_named
from paretone.training import CACHE_DIR, TrainConfig, distil


@dataclass(frozen=True)
class TrialResult:
    """What fine-tuning one candidate gave: the task's validation metric and the student's size."""

    score: float
    epochs_run: int
    best_epoch: int
    params: int
    macs: int
    artifacts: str  # the student's folder
    seconds: float


@dataclass
class TeacherContext:
    """The teacher, its labels and its data splits, loaded once."""

    teacher_path: Path
    teacher: AudioModel
    labels: tuple[str, ...]
    splits: Splits
    sets: SplitSets
    data_info: dict[str, Any]  # the teacher's data settings (root, layout, split)
    task: Task

    @property
    def cache_dir(self) -> Path:
        return self.teacher_path / CACHE_DIR

    def student_metadata(self) -> dict[str, Any]:
        return {"data": {**self.data_info, "split": self.splits.name}, "teacher": str(self.teacher_path)}

    def decoded(self) -> DecodedAudio:
        return DecodedAudio(self.splits, self.sets.to_arrays())


@dataclass(frozen=True)
class DecodedAudio:
    """A teacher's splits with their audio decoded, as the search's driver shares them with its
    workers through Ray's object store: numpy arrays, which Ray maps into every process of a node
    without a copy, so a worker neither decodes nor needs the dataset on its node."""

    splits: Splits
    arrays: dict[str, np.ndarray]  # SplitSets.to_arrays()

    def sets(self) -> SplitSets:
        return SplitSets.from_arrays(self.arrays)


def resolve_splits(
    teacher_dir: str | os.PathLike[str],
    *,
    data: str | os.PathLike[str] | None = None,
    split: str | None = None,
) -> tuple[LoadedModel, Splits]:
    """The teacher and the splits of its data (or ``data``/``split``), without decoding audio."""
    teacher_path = Path(teacher_dir)
    loaded = load_model(teacher_path)
    data_info = loaded.metadata.get("data", {})
    catalog = open_dataset(data or data_info.get("root"), data_info.get("layout", "auto"))
    if catalog.labels != loaded.labels:
        raise CheckpointError(
            f"{teacher_path}: the teacher's classes {list(loaded.labels)} differ from the data's "
            f"{list(catalog.labels)}; pass the dataset it was trained on"
        )
    return loaded, make_splits(catalog, split or data_info.get("split", "default"))


def load_context(
    teacher_dir: str | os.PathLike[str],
    *,
    data: str | os.PathLike[str] | None = None,
    split: str | None = None,
    progress: Progress | None = None,
    decoded: DecodedAudio | None = None,
) -> TeacherContext:
    """Load a teacher and the data it was trained on (or ``data``/``split`` if given); with
    ``decoded`` (see ``TeacherContext.decoded``), only the teacher is read, and ``data`` and
    ``split`` are not looked at."""
    if decoded is None:
        loaded, splits = resolve_splits(teacher_dir, data=data, split=split)
        task = task_named(loaded.task)
        front_end = loaded.model.config.front_end
        sets = load_splits(splits, loaded.labels, front_end, encode=task.encode_targets, progress=progress)
    else:
        loaded, splits, sets = load_model(Path(teacher_dir)), decoded.splits, decoded.sets()
        task = task_named(loaded.task)
    data_info = loaded.metadata.get("data", {})
    return TeacherContext(
        Path(teacher_dir), loaded.model.eval(), loaded.labels, splits, sets, data_info, task
    )


class TrialEvaluator:
    def __init__(
        self,
        teacher_dir: str | os.PathLike[str],
        *,
        data: str | os.PathLike[str] | None = None,
        split: str | None = None,
        threads: int = 1,
        device: str = "cpu",
        decoded: DecodedAudio | None = None,
    ) -> None:
        """``device``: where students fine-tune ("cpu", or "cuda" on a GPU worker); the teacher's
        logits are computed and cached on the CPU, and students are saved from it. ``decoded``: the
        splits and their audio, decoded elsewhere (see ``load_context``)."""
        if threads < 1:
            raise ValueError("threads must be >= 1")
        if device != "cpu" and not (device.startswith("cuda") and torch.cuda.is_available()):
            raise ConfigError(
                f"fine-tuning device {device!r}: this worker has no CUDA GPU torch can use; "
                "run GPU workers on a node with one (and a CUDA build of torch), or use --gpus-per-worker 0"
            )
        torch.set_num_threads(threads)
        self.device = device
        self.context = load_context(teacher_dir, data=data, split=split, decoded=decoded)
        self._logits: torch.Tensor | None = None
        self._students: dict[str, AudioModel] = {}  # new student architectures, distilled

    def fine_tune(
        self, recipe: dict[str, Any], *, epochs: int, out_dir: str | os.PathLike[str], seed: int = 0
    ) -> TrialResult:
        """Distil the student for ``epochs``, save it to ``out_dir``, return its validation metrics
        (``score``: the task's metric at the best epoch). ``seed``: the fine-tuning's (batch order);
        a search keeps it at 0, so a recipe gives the same student in every trial.

        Raises FloatingPointError on a non-finite loss (the trial fails with that reason).
        """
        started = time.perf_counter()
        context, parsed = self.context, Recipe.from_dict(recipe)
        if self._logits is None:
            self._logits = teacher_logits(context.teacher, context.sets.train, cache_dir=context.cache_dir)
        architecture = parsed.get(StudentArchitecture)
        base = (
            distilled_student(architecture, context, self._logits, memory=self._students, device=self.device)
            if architecture.family
            else None
        )
        student = apply(parsed, context.teacher, data=context.sets.train, task=context.task, base=base)
        result = distil(
            student,
            context.sets.train,
            context.sets.validation,
            self._logits,
            parsed.distillation,
            dataclasses.replace(TrainConfig.for_finetuning(epochs), seed=seed),
            task=context.task,
            device=self.device,
        )
        save_student(
            out_dir,
            student,
            parsed,
            labels=context.labels,
            task=context.task.name,
            metadata=context.student_metadata(),
        )
        complexity = count_complexity(student)
        return TrialResult(
            score=result.best_validation_score,
            epochs_run=len(result.history),
            best_epoch=result.best_epoch,
            params=complexity.params,
            macs=complexity.macs,
            artifacts=str(out_dir),
            seconds=round(time.perf_counter() - started, 1),
        )
