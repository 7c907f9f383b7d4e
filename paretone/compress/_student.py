"""From a recipe and a teacher to a student, and the student's artifacts on disk.

A student folder is an ordinary model checkpoint (config.json holds the pruned architecture,
weights.safetensors the weights, including activation ranges) plus recipe.json, from which the
fake-quantized layers are rebuilt; nothing else is needed and nothing is unpickled.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from paretone._io import write_json
from paretone.audio import WaveformSet
from paretone.compress._fake_quant import ActivationQuantizer, attach_fake_quant
from paretone.compress._prune import importance_scores, prune
from paretone.compress._recipe import Recipe
from paretone.errors import CheckpointError, ConfigError
from paretone.models import AudioModel, LoadedModel, load_model, save_model

RECIPE_FILE = "recipe.json"


def apply(recipe: Recipe, teacher: AudioModel, *, data: WaveformSet | None = None) -> AudioModel:
    """The student ``recipe`` describes: pruned by importance, fake-quantized, teacher untouched.

    ``data`` (a few batches of training clips) is needed by the ``taylor`` criterion and, when the
    recipe quantizes activations, to set their initial ranges.
    """
    recipe.check(teacher.structure())
    scores = importance_scores(teacher, recipe.importance, data)
    student = attach_fake_quant(prune(teacher, recipe, scores), dict(recipe.precision))
    if data is not None:
        calibrate_activations(student, data.waveforms[:256])
    return student


@torch.no_grad()
def calibrate_activations(model: AudioModel, waveforms: torch.Tensor, batch_size: int = 64) -> None:
    """Reset and observe every activation quantizer's range on ``waveforms``; nothing else changes."""
    quantizers = [m for m in model.modules() if isinstance(m, ActivationQuantizer)]
    if not quantizers:
        return
    was_training = model.training
    model.eval()
    for quantizer in quantizers:
        quantizer.initialized.fill_(False)
        quantizer.train()
    for batch in waveforms.split(batch_size):
        model(batch)
    model.train(was_training)


def save_student(
    directory: str | os.PathLike[str],
    student: AudioModel,
    recipe: Recipe,
    *,
    labels: tuple[str, ...],
    metadata: dict[str, Any] | None = None,
) -> Path:
    out = save_model(directory, student, labels=labels, metadata=metadata)
    write_json(out / RECIPE_FILE, recipe.to_dict())
    return out


def load_student(directory: str | os.PathLike[str]) -> tuple[LoadedModel, Recipe]:
    """Rebuild a student saved by ``save_student``: identical outputs, no pickle."""
    path = Path(directory) / RECIPE_FILE
    try:
        recipe = Recipe.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing; a student folder holds {RECIPE_FILE}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, ConfigError) as exc:
        raise CheckpointError(f"{path}: {exc}") from None

    def prepare(model: AudioModel) -> AudioModel:
        try:
            recipe.check(model.structure())
        except ConfigError as exc:
            raise CheckpointError(f"{path}: does not fit the model in config.json: {exc}") from None
        return attach_fake_quant(model, dict(recipe.precision))

    return load_model(directory, prepare=prepare), recipe
