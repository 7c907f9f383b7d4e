"""Export to ONNX: the graph starts at the raw waveform (the front-end is inside the model)."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from paretone._io import write_atomic
from paretone.models import AudioModel

INPUT_NAME, OUTPUT_NAME = "waveform", "logits"


def export_onnx(model: AudioModel, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` (eval mode, dynamic batch) to ``path`` atomically.

    Uses the dynamo exporter: the TorchScript one cannot export torchaudio's STFT.
    """
    model = model.eval()
    example = torch.zeros(2, model.front_end.config.clip_samples)
    batch = torch.export.Dim("batch")
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # silences "torchvision is not installed" notices
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes={"waveform": {0: batch}},
                verbose=False,
            )
    finally:
        quiet.setLevel(level)
    write_atomic(path, lambda tmp: program.save(str(tmp)))
    return Path(path)


def onnx_logits(onnx_path: str | os.PathLike[str], waveforms: torch.Tensor, *, threads: int = 1,
                batch_size: int = 64) -> torch.Tensor:
    """Run an exported model over ``waveforms`` (N, samples) with ONNX Runtime."""
    from paretone.hw_models import make_session

    session = make_session(onnx_path, threads=threads)
    outputs = [
        session.run([OUTPUT_NAME], {INPUT_NAME: chunk.numpy().astype(np.float32)})[0]
        for chunk in waveforms.split(batch_size)
    ]
    return torch.from_numpy(np.concatenate(outputs))
