"""Classify audio files with an exported model: what a user runs first to try the result."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from paretone.audio import read_waveform
from paretone.errors import ConfigError, DataError
from paretone.runtime import INPUT_NAME, OUTPUT_NAME, ModelMetadata, open_session
from paretone.tasks import task_named

FIX = "re-export it with `paretone pick`"


def classify_files(
    model: str | os.PathLike[str], files: list[str | os.PathLike[str]], *, threads: int = 1
) -> list[dict[str, Any]]:
    """Per file: the labels the model decides present (most probable first; for multi-label
    models at the per-class thresholds stored in the file), the first of them as ``label`` with its
    ``probability`` (None when nothing is detected), and every class's probability; or ``error``
    (one line) instead.

    A broken audio file does not stop the others; a broken model raises ConfigError.
    """
    session = open_session(Path(model), threads=threads, fix=FIX)
    meta = ModelMetadata.of_session(session, str(model))
    try:
        task = task_named(meta.task)
    except ConfigError as exc:
        raise ConfigError(f"{model}: {exc}; use a newer paretone") from None
    results = []
    for file in files:
        try:
            wave = read_waveform(file, sample_rate=meta.sample_rate, clip_samples=meta.clip_samples)
        except DataError as exc:
            results.append({"file": str(file), "error": str(exc)})
            continue
        logits = session.run([OUTPUT_NAME], {INPUT_NAME: wave.numpy()[None].astype(np.float32)})[0]
        if logits.shape[-1] != len(meta.labels):
            raise ConfigError(f"{model}: {logits.shape[-1]} outputs for {len(meta.labels)} labels; {FIX}")
        probabilities = task.probabilities(logits)[0]
        present = task.decide(probabilities[None], meta.thresholds)[0]
        order = [int(i) for i in np.argsort(-probabilities) if present[i]]
        results.append(
            {
                "file": str(file),
                "label": meta.labels[order[0]] if order else None,
                "probability": float(probabilities[order[0]]) if order else None,
                "labels": [meta.labels[i] for i in order],
                "probabilities": {
                    label: float(p) for label, p in zip(meta.labels, probabilities, strict=True)
                },
            }
        )
    return results
