"""Train a teacher end to end: data -> model -> checkpoint, ONNX file, and a metrics report."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import torch
from rich.progress import Progress

from paretone._io import write_json
from paretone._outputs import OutputFolder
from paretone._version import __version__
from paretone.audio import Catalog, load_splits, make_splits
from paretone.errors import ConfigError
from paretone.models import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    build_model,
    config_to_dict,
    count_complexity,
    export_onnx,
    save_model,
)
from paretone.runtime import ModelMetadata, measure_latency, run_logits, stamp_metadata
from paretone.tasks import CLASSIFICATION, Task, task_named
from paretone.training._config import TrainConfig
from paretone.training._loop import fit, predict_logits

METRICS_FILE = "metrics.json"
ONNX_FILE = "model.onnx"
DECISION = "decision"  # checkpoint metadata: the task's decision parameters (per-class thresholds)
CACHE_DIR = "cache"  # teacher logits cached by distillation (``compress.teacher_logits``)
TEACHER_ENTRIES = (CONFIG_FILE, WEIGHTS_FILE, METRICS_FILE, ONNX_FILE, CACHE_DIR)


def claim_teacher_folder(out_dir: str | os.PathLike[str], *, overwrite: bool = False) -> OutputFolder:
    """Check, before any training, that a teacher may be written to ``out_dir`` (see ``OutputFolder``)."""
    return OutputFolder.claim(out_dir, command="train", entries=TEACHER_ENTRIES, overwrite=overwrite)


def train_teacher(
    *,
    catalog: Catalog,
    split: str,
    model_config: Any,
    train_config: TrainConfig,
    out_dir: str | os.PathLike[str] | OutputFolder,
    task: Task = CLASSIFICATION,
    overwrite: bool = False,
    latency_threads: tuple[int, ...] = (1, 2),
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train, save (safetensors + JSON), export to ONNX, check ONNX against PyTorch, time it.

    Returns the metrics that are also written to ``out_dir/metrics.json``. Test scores are computed
    once, after training; model selection uses validation only. ``out_dir`` is claimed before
    anything else happens: an existing folder is refused unless ``overwrite`` (and even then only
    paretone's own files there are replaced).
    """
    folder = (
        out_dir if isinstance(out_dir, OutputFolder) else claim_teacher_folder(out_dir, overwrite=overwrite)
    )
    splits = make_splits(catalog, split)
    sets = load_splits(
        splits, catalog.labels, model_config.front_end, encode=task.encode_targets, progress=progress
    )
    model = build_model(model_config)
    complexity = count_complexity(model)
    result = fit(model, sets.train, sets.validation, train_config, task=task, progress=progress)
    test_logits = predict_logits(model, sets.test)
    test_score = task.score(test_logits, sets.test.targets)
    decision = task.calibrate_decision(predict_logits(model, sets.validation), sets.validation.targets)
    data_info = {
        "root": str(catalog.root),
        "layout": catalog.layout,
        "split": splits.name,
        "sizes": splits.sizes(),
        "labels": list(catalog.labels),
    }
    out = folder.begin()
    save_model(
        out,
        model,
        labels=catalog.labels,
        task=task.name,
        metadata={
            "data": data_info,
            "train": train_config.to_dict(),
            DECISION: None if decision is None else list(decision),
        },
    )
    onnx_path = export_onnx(model, out / ONNX_FILE)
    fe = model_config.front_end
    stamp_metadata(
        onnx_path,
        ModelMetadata(catalog.labels, fe.sample_rate, fe.clip_samples, __version__, {}, task.name, decision),
    )
    ort_logits = torch.from_numpy(run_logits(onnx_path, sets.test.waveforms.numpy()))
    latency = {f"threads_{n}": measure_latency(onnx_path, threads=n).to_dict() for n in latency_threads}
    metrics = {
        "paretone_version": __version__,
        "task": task.name,
        "model": {
            "family": model_config.family,
            "params": complexity.params,
            "macs": complexity.macs,
            "dense_macs": complexity.dense_macs,
            "config": config_to_dict(model_config),
        },
        "data": data_info,
        task.metric: {"validation": result.best_validation_score, "test": test_score},
        **{
            f"test_{name}": value
            for name, value in task.report(test_logits, sets.test.targets, decision).items()
        },
        "decision": None if decision is None else list(decision),
        "training": {
            "epochs_run": len(result.history),
            "best_epoch": result.best_epoch,
            "seconds": round(result.seconds, 1),
            "history": [vars(r) for r in result.history],
        },
        "onnx": {
            "file": ONNX_FILE,
            "bytes": onnx_path.stat().st_size,
            "max_abs_logit_diff": (ort_logits - test_logits).abs().max().item(),
            "top1_agreement": task.agreement(ort_logits, test_logits),
            f"test_{task.metric}": task.score(ort_logits, sets.test.targets),
        },
        "latency_ms": latency,
        "device": {
            "cpu": _cpu_name(),
            "machine": platform.machine(),
            "torch_threads": torch.get_num_threads(),
        },
    }
    write_json(out / METRICS_FILE, metrics)
    return metrics


def score_of(metrics: dict[str, Any], part: str) -> float | None:
    """The task metric of a teacher's ``metrics.json`` on ``part`` ("validation" or "test")."""
    try:
        metric = task_named(str(metrics.get("task", CLASSIFICATION.name))).metric
    except ConfigError:
        return None
    value = metrics.get(metric, {})
    return value.get(part) if isinstance(value, dict) else None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
