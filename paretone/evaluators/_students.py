"""New student architectures, distilled once from the teacher and shared by every trial that uses them.

A recipe with a ``student`` entry starts from a model of another family. Trained from scratch it
needs far more epochs than a pruned teacher's fine-tuning, so it is distilled once per
(architecture, teacher, data) and kept beside the teacher's cached logits as an ordinary
checkpoint; trials then fine-tune a copy with their own quantization and distillation settings.
Two workers that need the same student at once both distil it; the first to finish keeps it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from paretone.compress import Distill, StudentArchitecture
from paretone.errors import CheckpointError
from paretone.models import AudioModel, build_model, load_model, save_model
from paretone.training import TrainConfig, distil

if TYPE_CHECKING:
    from paretone.evaluators._trial import TeacherContext

STUDENTS_DIR = "students"


def _key(architecture: StudentArchitecture, logits: torch.Tensor, split: str) -> str:
    digest = hashlib.sha256(json.dumps(architecture.to_entry(), sort_keys=True).encode())
    digest.update(split.encode())
    digest.update(logits.contiguous().numpy().tobytes())  # the teacher and its training data
    return digest.hexdigest()[:24]


def distilled_student(
    architecture: StudentArchitecture,
    context: TeacherContext,
    logits: torch.Tensor,
    *,
    memory: dict[str, AudioModel] | None = None,
    device: str = "cpu",
) -> AudioModel:
    """A copy of ``architecture`` distilled from ``context``'s teacher (a ``TeacherContext``) for its
    epochs, from ``memory``, the teacher's cache folder, or trained now (on ``device``) and cached
    there."""
    split = context.splits.name
    key = _key(architecture, logits, split)
    if memory is not None and key in memory:
        return copy.deepcopy(memory[key])
    folder = Path(context.cache_dir) / STUDENTS_DIR / key
    config = architecture.config_for(context.teacher.config)
    model = _load(folder, config)
    if model is None:
        model = _train(architecture, config, context, logits, device)
        if folder.exists():  # damaged or stale: our own cache entry, replaced
            shutil.rmtree(folder, ignore_errors=True)
        _store(folder, model, context)
    if memory is not None:
        memory[key] = copy.deepcopy(model)
    return model


def _load(folder: Path, config: Any) -> AudioModel | None:
    if not folder.is_dir():
        return None
    try:
        loaded = load_model(folder)
    except CheckpointError:
        return None  # a damaged entry is trained again and replaced
    return loaded.model if loaded.config == config else None


def _train(
    architecture: StudentArchitecture, config: Any, context: TeacherContext, logits: torch.Tensor, device: str
) -> AudioModel:
    torch.manual_seed(0)
    model = build_model(config)
    sets = context.sets
    train_config = TrainConfig(epochs=architecture.epochs).without_augmentation()
    distil(
        model, sets.train, sets.validation, logits, Distill(), train_config, task=context.task, device=device
    )
    return model.eval()


def _store(folder: Path, model: AudioModel, context: TeacherContext) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    save_model(staging, model, labels=context.labels, task=context.task.name)
    try:
        os.rename(staging, folder)
    except OSError:  # another worker stored it first: keep theirs
        shutil.rmtree(staging, ignore_errors=True)
