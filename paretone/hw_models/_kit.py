"""Calibration kits: the ONNX models to measure on a device, and the import of what it measured.

A kit is a folder: ``manifest.json`` (what each file is), ``baseline.onnx`` (an empty session),
``kernels/*.onnx`` (micro-models), ``models/*.onnx`` (random compressed whole models, for the
per-model overhead and the memory model) and ``run_kit.py`` (needs only onnxruntime and numpy).
Local calibration builds the same kit and runs the same script, in a fresh child process.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
import torch

from paretone._io import read_format_json, write_atomic, write_json
from paretone.compress import Recipe, apply, calibrate_activations, export_compressed
from paretone.errors import ConfigError
from paretone.hw_models._micro import micro_model
from paretone.hw_models._profile import DeviceProfile, KernelMeasurement, ModelMeasurement
from paretone.hw_models._sweep import random_recipe
from paretone.models import AudioModel, Kernel
from paretone.runtime import _kit_runner, empty_model

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class KitModel:
    """A whole compressed model to measure: the recipe over the teacher and its kernels."""

    name: str
    recipe: Recipe
    kernels: tuple[Kernel, ...]


SMALL_EVERY = 4  # every 4th random whole model is a small one (``random_recipe(small=True)``)


def random_models(teacher: AudioModel, count: int, *, seed: int, prefix: str) -> list[KitModel]:
    """``count`` random compressions of ``teacher``, every ``SMALL_EVERY``-th near the space's floor.

    Tight budgets put the search near the floor, and the whole-model fit must not extrapolate
    there: with models drawn freely only (the smallest at 0.85 ms on a Xeon), it predicted the
    bests of a search at 30% of the teacher 1.5x their measured 0.3 ms."""
    rng = random.Random(seed)
    structure = teacher.structure()
    models = []
    for i in range(count):
        recipe = random_recipe(structure, rng, small=i % SMALL_EVERY == SMALL_EVERY - 1)
        models.append(KitModel(f"{prefix}-{seed}-{i:03d}", recipe, tuple(recipe.kernels(teacher.config))))
    return models


def export_model(teacher: AudioModel, recipe: Recipe, path: str | os.PathLike[str], *, seed: int = 0) -> None:
    """Export the student ``recipe`` makes of ``teacher`` (untrained: latency needs no accuracy)."""
    generator = torch.Generator().manual_seed(seed)
    waveforms = torch.randn(32, teacher.front_end.config.clip_samples, generator=generator) * 0.1
    student = apply(recipe, teacher).eval()
    calibrate_activations(student, waveforms)
    export_compressed(student, recipe, path, calibration=waveforms)


def _entry_id(kernel: Kernel) -> str:
    return f"kernel:{kernel.key}"


def write_kit(
    kit_dir: str | os.PathLike[str],
    *,
    kernels: list[Kernel],
    teacher: AudioModel | None,
    models: list[KitModel],
    threads: int,
    passes: int = 5,
    runs: int = 40,
    warmup: int = 10,
    progress: Progress | None = None,
) -> Path:
    """Write (or complete) a kit; files already present from an interrupted run are kept.

    Each model is timed ``runs`` times after ``warmup`` in each of ``passes`` interleaved passes.
    """
    if threads < 1 or passes < 1 or runs < 1 or warmup < 0:
        raise ValueError("threads, passes and runs must be >= 1, warmup >= 0")
    if models and teacher is None:
        raise ValueError("whole models need the teacher they compress")
    kit = Path(kit_dir)
    (kit / "kernels").mkdir(parents=True, exist_ok=True)
    (kit / "models").mkdir(exist_ok=True)
    entries: list[dict[str, Any]] = [
        {"id": "baseline", "file": "baseline.onnx", "role": "baseline", "memory": True}
    ]
    write_atomic(kit / "baseline.onnx", lambda tmp: onnx.save(empty_model(), str(tmp)))
    total = len(kernels) + len(models)
    for i, kernel in enumerate(kernels):
        file = f"kernels/{hashlib.sha256(kernel.key.encode()).hexdigest()[:16]}.onnx"
        if not (kit / file).exists():
            model = micro_model(kernel)
            write_atomic(kit / file, lambda tmp, m=model: onnx.save(m, str(tmp)))
        entries.append({"id": _entry_id(kernel), "file": file, "role": "kernel", "kernel": kernel.to_dict()})
        if progress:
            progress("building micro-models", i + 1, total)
    for i, model in enumerate(models):
        file = f"models/{model.name}.onnx"
        if not (kit / file).exists():
            export_model(teacher, model.recipe, kit / file)  # type: ignore[arg-type]
        entries.append(
            {
                "id": f"model:{model.name}",
                "file": file,
                "role": "model",
                "name": model.name,
                "memory": True,
                "recipe": model.recipe.to_dict(),
                "kernels": [k.to_dict() for k in model.kernels],
            }
        )
        if progress:
            progress("exporting whole models", len(kernels) + i + 1, total)
    digest = hashlib.sha256(json.dumps([e["id"] for e in entries] + [threads, passes, runs, warmup]).encode())
    manifest = {
        "format": _kit_runner.KIT_FORMAT,
        "kit": digest.hexdigest()[:16],
        "threads": threads,
        "passes": passes,
        "runs": runs,
        "warmup": warmup,
        "entries": entries,
    }
    write_json(kit / _kit_runner.MANIFEST, manifest)
    shutil.copyfile(_kit_runner.__file__, kit / _kit_runner.RUNNER_FILE)
    return kit


def read_results(path: str | os.PathLike[str]) -> dict[str, Any]:
    return read_format_json(
        path,
        _kit_runner.RESULTS_FORMAT,
        missing="run the kit's run_kit.py on the device first",
        fix="use the results.json written by a kit's run_kit.py",
    )


def merge_results(
    profile: DeviceProfile | None, device: str, results: dict[str, Any], source: str
) -> DeviceProfile:
    """Add a kit's measurements to ``profile`` (a new one if None); refused if from another device."""
    try:
        fingerprint, manifest, measured = (
            results["fingerprint"],
            results["manifest"],
            results.get("measurements", {}),
        )
        if profile is None:
            profile = DeviceProfile(device, dict(fingerprint))
        profile.check_same_device(fingerprint, source)
        kernels, models = [], []
        for entry in manifest["entries"]:
            m = measured.get(entry["id"])
            if m is None:
                continue  # not measured yet (interrupted run): a re-run of the kit completes it
            if entry["role"] == "baseline":
                profile.baseline = {
                    "latency_ms": m["latency_ms"],
                    "peak_bytes": m["peak_bytes"],
                    "file_bytes": m["file_bytes"],
                    **({"tensor_peak_bytes": m["tensor_peak_bytes"]} if m.get("tensor_peak_bytes") else {}),
                }
            elif entry["role"] == "kernel":
                kernels.append(
                    KernelMeasurement(Kernel.from_dict(entry["kernel"]), m["latency_ms"], m["file_bytes"])
                )
            else:
                models.append(
                    ModelMeasurement(
                        name=entry["name"],
                        kernels=tuple(Kernel.from_dict(k) for k in entry["kernels"]),
                        latency_ms=m["latency_ms"],
                        file_bytes=m["file_bytes"],
                        peak_bytes=m.get("peak_bytes"),
                        recipe=entry.get("recipe"),
                        tensor_peak_bytes=m.get("tensor_peak_bytes"),
                    )
                )
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"{source}: malformed kit results ({exc!r}); re-run the kit's run_kit.py") from None
    profile.add_kernels(kernels)
    profile.add_models(models)
    return profile
