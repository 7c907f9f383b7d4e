"""One compressed candidate, end to end: recipe -> fine-tuned student -> metrics and artifacts.

Takes plain arguments (paths, a recipe) and returns a plain dict, so that it can later run inside
a Ray task unchanged.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from rich.progress import Progress

from paretone import __version__
from paretone._io import write_json
from paretone.compress import (
    Recipe,
    apply,
    export_compressed,
    export_onnx,
    onnx_logits,
    save_student,
    teacher_logits,
)
from paretone.evaluators._trial import load_context
from paretone.hw_models import measure_latencies
from paretone.models import count_complexity
from paretone.training import TrainConfig, accuracy, distil, predict_logits

STUDENT_ONNX = "model.onnx"


def evaluate(
    recipe: Recipe,
    teacher_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    data: str | os.PathLike[str] | None = None,
    split: str | None = None,
    train_config: TrainConfig | None = None,
    latency_threads: int = 1,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Compress the teacher in ``teacher_dir`` by ``recipe``, distil, export and measure.

    The data and split default to the teacher's own (from its config.json), so the student is
    tuned on the same validation set and reported on the same test set as its teacher.
    Writes the student checkpoint, recipe.json, model.onnx and metrics.json to ``out_dir``.
    """
    started = time.perf_counter()
    out = Path(out_dir)
    context = load_context(teacher_dir, data=data, split=split, progress=progress)
    teacher, teacher_path, splits, sets = context.teacher, context.teacher_path, context.splits, context.sets

    student = apply(recipe, teacher, data=sets.train)
    cached = teacher_logits(teacher, sets.train, cache_dir=teacher_path / "cache")
    config = train_config or TrainConfig.for_finetuning()
    fit_result = distil(
        student,
        sets.train,
        sets.validation,
        cached,
        recipe.distillation,
        config.without_augmentation(),
        progress=progress,
    )

    save_student(
        out,
        student,
        recipe,
        labels=context.labels,
        metadata=context.student_metadata(),
    )
    onnx_path = out / STUDENT_ONNX
    deployment = export_compressed(student, recipe, onnx_path, calibration=sets.train.waveforms[:64])
    teacher_onnx = teacher_path / "model.onnx"
    if not teacher_onnx.is_file():
        export_onnx(teacher, teacher_onnx)
    ort_logits = onnx_logits(onnx_path, sets.test.waveforms, threads=latency_threads)
    torch_logits = predict_logits(student, sets.test)
    student_c, teacher_c = count_complexity(student), count_complexity(teacher)
    teacher_latency, student_latency = measure_latencies([teacher_onnx, onnx_path], threads=latency_threads)
    latency = {"teacher": teacher_latency.latency_ms, "student": student_latency.latency_ms}
    metrics = {
        "paretone_version": __version__,
        "recipe": recipe.to_dict(),
        "split": splits.name,
        "accuracy": {
            "validation": fit_result.best_validation_accuracy,
            "test": accuracy(student, sets.test),
            "teacher_test": accuracy(teacher, sets.test),
            "onnx_test": (ort_logits.argmax(1) == sets.test.targets).float().mean().item(),
        },
        "onnx_agreement": {
            "top1": (ort_logits.argmax(1) == torch_logits.argmax(1)).float().mean().item(),
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
    write_json(out / "metrics.json", metrics)
    return metrics
