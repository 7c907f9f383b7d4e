"""From a recipe and a teacher to a student, and the student's artifacts on disk.

A student folder is an ordinary model checkpoint (config.json holds the pruned architecture,
weights.safetensors the weights, including activation ranges) plus recipe.json, from which the
operators' module transforms (fake-quantized layers) are rebuilt; nothing else is needed and
nothing is unpickled.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from paretone._io import read_json, write_json
from paretone.audio import WaveformSet
from paretone.compress._fake_quant import ActivationQuantizer
from paretone.compress._prune import Prune
from paretone.compress._recipe import Recipe
from paretone.errors import CheckpointError, ConfigError
from paretone.models import AudioModel, LoadedModel, build_model, family_of, load_model, save_model
from paretone.tasks import CLASSIFICATION, Task

RECIPE_FILE = "recipe.json"


def apply(
    recipe: Recipe,
    teacher: AudioModel,
    *,
    data: WaveformSet | None = None,
    task: Task = CLASSIFICATION,
    base: AudioModel | None = None,
) -> AudioModel:
    """The student ``recipe`` describes, teacher untouched: its architecture planned by the
    operators, the best structures of the base model sliced in by the family, then each operator's
    module transform (fake quantization) in order.

    The base model is the teacher, or for a recipe with a ``student`` entry that new architecture:
    ``base`` when given (weights distilled beforehand, see ``evaluators``), else freshly initialised.
    ``data`` (a few batches of training clips) is needed by data-driven importance criteria and,
    when the recipe quantizes activations, to set their initial ranges.
    """
    base_config = recipe.base_config(teacher.config)
    if base_config is teacher.config:
        source = teacher
    elif base is not None:
        if base.config != base_config:
            raise ConfigError("apply: the base model given is not the recipe's student architecture")
        source = base
    else:
        source = build_model(base_config).train(teacher.training)
    structure = source.structure()
    recipe.check(structure)
    family = family_of(source.config)
    plan = recipe.plan(structure)
    config = family.student_config(source.config, kept=plan.kept, front_end=plan.front_end)
    kept = {u.name: plan.kept.get(u.name, u.size) for u in structure.prunable}
    keep = recipe.get(Prune).keep_indices(source, kept, data, task)
    state = {k: v.detach().clone() for k, v in source.state_dict().items()}
    family.slice(source.config, config, keep, state)
    student = family.build(config)
    # The front-end holds constants only: the student's own, which may differ from the teacher's.
    state = {k: v for k, v in state.items() if not k.startswith("front_end.")}
    state |= {k: v for k, v in student.state_dict().items() if k.startswith("front_end.")}
    student.load_state_dict(state, strict=True)
    student.train(teacher.training)
    for op in recipe.operators:
        student = op.transform(student, data=data)
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
    task: str = CLASSIFICATION.name,
    metadata: dict[str, Any] | None = None,
) -> Path:
    out = save_model(directory, student, labels=labels, task=task, metadata=metadata)
    write_json(out / RECIPE_FILE, recipe.to_dict())
    return out


def load_student(directory: str | os.PathLike[str]) -> tuple[LoadedModel, Recipe]:
    """Rebuild a student saved by ``save_student``: identical outputs, no pickle."""
    path = Path(directory) / RECIPE_FILE
    try:
        recipe = Recipe.from_dict(
            read_json(path, missing=f"a student folder holds {RECIPE_FILE}", fix="re-create the student")
        )
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from None

    def prepare(model: AudioModel) -> AudioModel:
        # The student's structure is already the pruned one: only the module transforms remain.
        recipe.check(model.structure())
        for op in recipe.operators:
            model = op.transform(model, initialise=False)
        return model

    try:
        return load_model(directory, prepare=prepare), recipe
    except ConfigError as exc:
        raise CheckpointError(f"{path}: does not fit the model in config.json: {exc}") from None
