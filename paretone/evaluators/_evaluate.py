"""One compressed candidate, end to end: recipe -> fine-tuned student -> metrics and artifacts.

Takes plain arguments (paths, a recipe) and returns a plain dict (also written as metrics.json).
"""

from __future__ import annotations

import os
import time
from typing import Any

import torch
from rich.progress import Progress

from paretone._io import write_json
from paretone._outputs import OutputFolder
from paretone._version import __version__
from paretone.compress import (
    RECIPE_FILE,
    Recipe,
    StudentArchitecture,
    apply,
    export_compressed,
    save_student,
    teacher_logits,
)
from paretone.evaluators._students import distilled_student
from paretone.evaluators._trial import load_context
from paretone.models import CONFIG_FILE, WEIGHTS_FILE, count_complexity, export_onnx
from paretone.runtime import measure_latencies, run_logits
from paretone.training import METRICS_FILE, ONNX_FILE, TrainConfig, distil, predict_logits

STUDENT_ONNX = ONNX_FILE
STUDENT_ENTRIES = (CONFIG_FILE, WEIGHTS_FILE, RECIPE_FILE, STUDENT_ONNX, METRICS_FILE)


def claim_student_folder(
    out_dir: str | os.PathLike[str], *, teacher_dir: str | os.PathLike[str], overwrite: bool = False
) -> OutputFolder:
    """Check, before any work, that a student may be written to ``out_dir`` (never the teacher's own)."""
    return OutputFolder.claim(
        out_dir, command="compress", entries=STUDENT_ENTRIES, overwrite=overwrite, inputs=(teacher_dir,)
    )


def evaluate(
    recipe: Recipe,
    teacher_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | OutputFolder,
    *,
    data: str | os.PathLike[str] | None = None,
    split: str | None = None,
    train_config: TrainConfig | None = None,
    latency_threads: int = 1,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Compress the teacher in ``teacher_dir`` by ``recipe``, distil, export and measure.

    The data and split default to the teacher's own (from its config.json), so the student is
    tuned on the same validation set and reported on the same test set as its teacher.
    Writes the student checkpoint, recipe.json, model.onnx and metrics.json to ``out_dir``.
    """
    started = time.perf_counter()
    folder = (
        out_dir
        if isinstance(out_dir, OutputFolder)
        else claim_student_folder(out_dir, teacher_dir=teacher_dir, overwrite=overwrite)
    )
    context = load_context(teacher_dir, data=data, split=split, progress=progress)
    recipe.check(recipe.base_structure(context.teacher.config))
    teacher, teacher_path, splits, sets, task = (
        context.teacher,
        context.teacher_path,
        context.splits,
        context.sets,
        context.task,
    )
    cached = teacher_logits(teacher, sets.train, cache_dir=context.cache_dir)
    architecture = recipe.get(StudentArchitecture)
    base = distilled_student(architecture, context, cached) if architecture.family else None
    student = apply(recipe, teacher, data=sets.train, task=task, base=base)
    config = train_config or TrainConfig.for_finetuning()
    fit_result = distil(
        student,
        sets.train,
        sets.validation,
        cached,
        recipe.distillation,
        config.without_augmentation(),
        task=task,
        progress=progress,
    )
    out = folder.begin()
    save_student(
        out, student, recipe, labels=context.labels, task=task.name, metadata=context.student_metadata()
    )
    onnx_path = out / STUDENT_ONNX
    deployment = export_compressed(student, recipe, onnx_path, calibration=sets.train.waveforms[:64])
    teacher_onnx = teacher_path / ONNX_FILE
    if not teacher_onnx.is_file():
        export_onnx(teacher, teacher_onnx)
    ort_logits = torch.from_numpy(run_logits(onnx_path, sets.test.waveforms.numpy(), threads=latency_threads))
    torch_logits = predict_logits(student, sets.test)
    student_c, teacher_c = count_complexity(student), count_complexity(teacher)
    teacher_latency, student_latency = measure_latencies([teacher_onnx, onnx_path], threads=latency_threads)
    latency = {"teacher": teacher_latency.latency_ms, "student": student_latency.latency_ms}
    targets = sets.test.targets
    metrics = {
        "paretone_version": __version__,
        "task": task.name,
        "recipe": recipe.to_dict(),
        "split": splits.name,
        task.metric: {
            "validation": fit_result.best_validation_score,
            "test": task.score(torch_logits, targets),
            "teacher_test": task.score(predict_logits(teacher, sets.test), targets),
            "onnx_test": task.score(ort_logits, targets),
        },
        "onnx_agreement": {
            "top1": task.agreement(ort_logits, torch_logits),
            "max_abs_logit_diff": (ort_logits - torch_logits).abs().max().item(),
        },
        "params": {"student": student_c.params, "teacher": teacher_c.params},
        "macs": {"student": student_c.macs, "teacher": teacher_c.macs},
        "file_bytes": {"student": onnx_path.stat().st_size, "teacher": teacher_onnx.stat().st_size},
        "latency_ms": {**latency, "threads": latency_threads},
        "layers": {
            d.layer: {"format": d.format.name, "native": d.format.native, "onnx_node": d.onnx_node}
            for d in deployment
        },
        "finetune": {"epochs_run": len(fit_result.history), "best_epoch": fit_result.best_epoch},
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_json(out / METRICS_FILE, metrics)
    return metrics
