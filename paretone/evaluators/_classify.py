"""Classify audio files with an exported model: what a user runs first to try the result."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from paretone.audio import read_waveform
from paretone.compress import INPUT_NAME, OUTPUT_NAME
from paretone.errors import ConfigError, DataError


def _session(model: Path, threads: int) -> tuple[Any, tuple[str, ...], int, int]:
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

    from paretone.hw_models import make_session

    if not model.is_file():
        raise ConfigError(f"{model}: no such model file; `paretone pick` writes one (model.onnx)")
    try:
        session = make_session(model, threads=threads)
    except (
        ort_errors.Fail,
        ort_errors.InvalidArgument,
        ort_errors.InvalidGraph,
        ort_errors.InvalidProtobuf,
        ort_errors.NoSuchFile,
        ort_errors.NotImplemented,
    ) as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise ConfigError(
            f"{model}: ONNX Runtime cannot load it ({first}); re-export it with `paretone pick`"
        ) from None
    meta = session.get_modelmeta().custom_metadata_map
    try:
        labels = tuple(str(x) for x in json.loads(meta["paretone.labels"]))
        rate, samples = int(meta["paretone.sample_rate"]), int(meta["paretone.clip_samples"])
    except (KeyError, ValueError, TypeError):
        raise ConfigError(
            f"{model}: no paretone metadata (labels, sample rate); use a model written by `paretone pick`"
        ) from None
    return session, labels, rate, samples


def classify_files(
    model: str | os.PathLike[str], files: list[str | os.PathLike[str]], *, threads: int = 1
) -> list[dict[str, Any]]:
    """Per file: label, probability and all class probabilities, or ``error`` (one line) instead.

    A broken audio file does not stop the others; a broken model raises ConfigError.
    """
    session, labels, rate, samples = _session(Path(model), threads)
    results = []
    for file in files:
        try:
            wave = read_waveform(file, sample_rate=rate, clip_samples=samples)
        except DataError as exc:
            results.append({"file": str(file), "error": str(exc)})
            continue
        logits = session.run([OUTPUT_NAME], {INPUT_NAME: wave.numpy()[None].astype(np.float32)})[0][0]
        probabilities = np.exp(logits - logits.max())
        probabilities /= probabilities.sum()
        best = int(probabilities.argmax())
        results.append(
            {
                "file": str(file),
                "label": labels[best],
                "probability": float(probabilities[best]),
                "probabilities": {label: float(p) for label, p in zip(labels, probabilities, strict=True)},
            }
        )
    return results
