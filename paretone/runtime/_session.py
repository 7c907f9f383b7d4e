"""Running an exported model: the session policy, input and output names, and user-facing errors.

Every paretone room that runs ONNX goes through here (calibration kits carry their own copy of the
session policy in ``_kit_runner``, which is this very policy: ``make_session`` is imported from it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from paretone.errors import ConfigError
from paretone.runtime._kit_runner import make_session

INPUT_NAME, OUTPUT_NAME = "waveform", "logits"
# A streaming model's audio input and per-frame output; every other input is state, and comes back
# as the output of the same name + STATE_SUFFIX.
STREAM_INPUT, STREAM_OUTPUT, STATE_SUFFIX = "chunk", "frame_logits", "_out"
OPSET = 20  # what torch's dynamo exporter writes
IR_VERSION = 10  # ONNX Runtime 1.17+ reads it; onnx 1.23 would write 14 by default


def open_session(path: str | os.PathLike[str], *, threads: int = 1, fix: str) -> Any:
    """A session on ``path``; ConfigError (one line, ending with ``fix``) if ONNX Runtime cannot load it."""
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

    model = Path(path)
    if not model.is_file():
        raise ConfigError(f"{model}: no such model file; {fix}")
    try:
        return make_session(model, threads=threads)
    except (
        ort_errors.Fail,
        ort_errors.InvalidArgument,
        ort_errors.InvalidGraph,
        ort_errors.InvalidProtobuf,
        ort_errors.NoSuchFile,
        ort_errors.NotImplemented,
    ) as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise ConfigError(f"{model}: ONNX Runtime cannot load it ({first}); {fix}") from None


def run_logits(
    model: str | os.PathLike[str] | Any, waveforms: np.ndarray, *, threads: int = 1, batch_size: int = 64
) -> np.ndarray:
    """The model's ``logits`` for ``waveforms`` (N, samples); ``model`` a path or an open session."""
    session = make_session(model, threads=threads) if isinstance(model, str | os.PathLike) else model
    waveforms = np.asarray(waveforms, dtype=np.float32)
    outputs = [
        session.run([OUTPUT_NAME], {INPUT_NAME: waveforms[i : i + batch_size]})[0]
        for i in range(0, len(waveforms), batch_size)
    ]
    return np.concatenate(outputs) if outputs else np.zeros((0, 0), np.float32)


def empty_model() -> onnx.ModelProto:
    """A one-node model: what a session run costs (time, memory) before any kernel does work."""
    node = helper.make_node("Identity", ["x"], ["y"])
    value = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 1])  # noqa: E731
    graph = helper.make_graph([node], "empty", [value("x")], [value("y")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
