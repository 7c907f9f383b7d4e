"""Train a teacher end to end: data -> model -> checkpoint, ONNX file, and a metrics report."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import torch
from rich.progress import Progress

from paretone import __version__
from paretone._io import write_json
from paretone.audio import Catalog, load_splits, make_splits
from paretone.compress import export_onnx, onnx_logits
from paretone.hw_models import measure_latency
from paretone.models import ModelConfig, build_model, config_to_dict, count_complexity, save_model
from paretone.training._config import TrainConfig
from paretone.training._loop import accuracy, fit, predict_logits

METRICS_FILE = "metrics.json"
ONNX_FILE = "model.onnx"


def train_teacher(
    *,
    catalog: Catalog,
    split: str,
    model_config: ModelConfig,
    train_config: TrainConfig,
    out_dir: str | os.PathLike[str],
    latency_threads: tuple[int, ...] = (1, 2),
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train, save (safetensors + JSON), export to ONNX, check ONNX against PyTorch, time it.

    Returns the metrics that are also written to ``out_dir/metrics.json``. Test accuracy is
    computed once, after training; model selection uses validation only.
    """
    out = Path(out_dir)
    splits = make_splits(catalog, split)
    sets = load_splits(splits, catalog.labels, model_config.front_end, progress=progress)
    model = build_model(model_config)
    complexity = count_complexity(model)
    result = fit(model, sets.train, sets.validation, train_config, progress=progress)
    test_accuracy = accuracy(model, sets.test)
    data_info = {
        "root": str(catalog.root),
        "layout": catalog.layout,
        "split": splits.name,
        "sizes": splits.sizes(),
        "labels": list(catalog.labels),
    }
    save_model(
        out, model, labels=catalog.labels, metadata={"data": data_info, "train": train_config.to_dict()}
    )

    onnx_path = export_onnx(model, out / ONNX_FILE)
    torch_logits = predict_logits(model, sets.test)
    ort_logits = onnx_logits(onnx_path, sets.test.waveforms)
    latency = {f"threads_{n}": measure_latency(onnx_path, threads=n).to_dict() for n in latency_threads}
    metrics = {
        "paretone_version": __version__,
        "model": {
            "family": model_config.family,
            "params": complexity.params,
            "macs": complexity.macs,
            "dense_macs": complexity.dense_macs,
            "config": config_to_dict(model_config),
        },
        "data": data_info,
        "accuracy": {"validation": result.best_validation_accuracy, "test": test_accuracy},
        "training": {
            "epochs_run": len(result.history),
            "best_epoch": result.best_epoch,
            "seconds": round(result.seconds, 1),
            "history": [vars(r) for r in result.history],
        },
        "onnx": {
            "file": ONNX_FILE,
            "bytes": onnx_path.stat().st_size,
            "max_abs_logit_diff": (ort_logits - torch_logits).abs().max().item(),
            "top1_agreement": (ort_logits.argmax(1) == torch_logits.argmax(1)).float().mean().item(),
            "test_accuracy": (ort_logits.argmax(1) == sets.test.targets).float().mean().item(),
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


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
