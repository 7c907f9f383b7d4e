"""Exports a phone can use: fixed shapes, the ORT format, and ONNX Runtime's own verdict per provider.

Mobile execution providers (NNAPI, CoreML) take only nodes with fixed shapes, so a model exported
with a dynamic batch falls back to the CPU almost everywhere. ``pick`` therefore also writes the
model at batch 1 (a streaming model is fixed-shape already: one chunk and its state) and converts
it to the ORT format ONNX Runtime Mobile loads (``onnxruntime.tools.convert_onnx_models_to_ort``);
both are checked to compute what the shipped ONNX file computes, and ONNX Runtime's usability
checker (``check_onnx_model_mobile_usability``) says, per provider, how much of the graph it takes.
"""

from __future__ import annotations

import io
import logging
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from paretone.runtime import make_session

FIXED_FILE, ORT_FILE = "model-fixed.onnx", "model.ort"
_PARTITIONS = re.compile(r"(\d+) partitions with a total of (\d+)/(\d+) nodes can be handled by the (.+?) EP")
_VERDICT = re.compile(r"Model should perform well with (.+?) as is: (YES|NO)")


@dataclass(frozen=True)
class ProviderVerdict:
    """The usability checker on the fixed-shape export, for one execution provider."""

    provider: str
    partitions: int
    nodes_supported: int
    nodes: int
    recommended: bool  # the checker's "should perform well as is"


@dataclass(frozen=True)
class MobileExport:
    fixed_onnx: str
    ort: str
    fixed_max_abs_diff: float  # against the shipped ONNX file, on the same input
    ort_max_abs_diff: float
    verdicts: tuple[ProviderVerdict, ...]


def usability(path: Path) -> tuple[ProviderVerdict, ...]:
    """ONNX Runtime's mobile usability checker on ``path``: the last (fixed-shape) finding per provider."""
    from onnxruntime.tools.mobile_helpers import usability_checker

    buffer = io.StringIO()
    logger = logging.getLogger("paretone.mobile_usability")
    logger.handlers, logger.propagate = [logging.StreamHandler(buffer)], False
    logger.setLevel(logging.INFO)
    usability_checker.analyze_model(path, skip_optimize=False, logger=logger)
    found: dict[str, list[int]] = {}
    verdicts: dict[str, bool] = {}
    for line in buffer.getvalue().splitlines():
        if match := _PARTITIONS.search(line):
            found[match[4]] = [int(match[1]), int(match[2]), int(match[3])]
        elif match := _VERDICT.search(line):
            verdicts[match[1]] = match[2] == "YES"
    return tuple(ProviderVerdict(p, *found[p], verdicts.get(p, False)) for p in found)


def to_ort_format(onnx_path: Path, target: Path) -> Path:
    """Convert with ONNX Runtime's own tool (fixed optimisations, so any device replays them)."""
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [sys.executable, "-m", "onnxruntime.tools.convert_onnx_models_to_ort", str(onnx_path),
             "--output_dir", tmp, "--optimization_style", "Fixed"],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        produced = next(Path(tmp).glob("*.ort"), None)
        if done.returncode != 0 or produced is None:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"ORT format conversion of {onnx_path} failed: {last[0]}")
        shutil.move(str(produced), target)
    return target


def max_abs_diff(reference: Path, other: Path, feeds: dict[str, np.ndarray]) -> float:
    """Largest difference of the first output of two models on the same feeds."""
    a = make_session(reference, 1).run(None, feeds)[0]
    b = make_session(other, 1).run(None, feeds)[0]
    return float(np.abs(a - b).max())


def mobile_exports(shipped: Path, fixed: Path, folder: Path, feeds: dict[str, np.ndarray]) -> MobileExport:
    """Convert the fixed-shape export ``fixed`` (already written) to ORT format in ``folder``, check
    both against ``shipped`` on ``feeds`` (inputs of the fixed shape) and run the usability checker."""
    ort_path = to_ort_format(fixed, folder / ORT_FILE)
    return MobileExport(
        fixed_onnx=str(fixed),
        ort=str(ort_path),
        fixed_max_abs_diff=max_abs_diff(shipped, fixed, feeds),
        ort_max_abs_diff=max_abs_diff(shipped, ort_path, feeds),
        verdicts=usability(fixed),
    )
