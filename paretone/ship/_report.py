"""What ``pick`` found, as plain dataclasses: written as ``pick.json``, read by the card and ``pareto``.

Everything here is JSON-plain (``to_dict``) and reads back (``from_dict``); a corrupt or foreign
``pick.json`` is a one-line ConfigError, never a traceback.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from paretone._io import read_json
from paretone._plain import from_plain
from paretone._version import __version__
from paretone.errors import ConfigError
from paretone.runtime import LatencyMeasurement
from paretone.ship._mobile import MobileExport

PICK_FORMAT = "paretone.pick/2"
PICKED, TEACHER_FP32, TEACHER_INT8 = "picked", "teacher_fp32", "teacher_quantize_dynamic"
TEACHER_INT8_CAREFUL = "teacher_quantize_dynamic_without_front_end"
MODEL_NAMES = {
    PICKED: "picked model",
    TEACHER_FP32: "teacher, fp32",
    TEACHER_INT8: "teacher, `quantize_dynamic` int8",
    TEACHER_INT8_CAREFUL: "teacher, `quantize_dynamic` int8, front-end excluded",
}


@dataclass(frozen=True)
class MeasuredModel:
    """One model measured in the pick's run: the shipped one or a baseline beside it."""

    name: str  # a key of MODEL_NAMES
    onnx: str
    test_score: float  # the task's metric on the test split
    timing: LatencyMeasurement  # side by side with the other models, in one fresh process
    file_bytes: int
    peak_bytes: int  # beyond an empty session
    macs: int | None = None
    params: int | None = None
    test_report: dict[str, Any] = field(default_factory=dict)  # the task's other test fields (F1...)

    @property
    def measured_latency_ms(self) -> float:
        return self.timing.latency_ms


@dataclass(frozen=True)
class StreamingFacts:
    """How a model picked for a stream runs on one (``pick --chunk-ms``, ``search --chunk-ms``):
    ``mode`` "stream" (chunk by chunk with its state) or "windows" (a clip model, a window per chunk)."""

    mode: str
    chunk_samples: int
    chunk_ms: float
    p50_ms: float  # per call (one chunk)
    p95_ms: float
    real_time_factor: float
    audio_seconds: float
    state_bytes: int
    algorithmic_delay_ms: float
    stream_vs_clip_max_abs_diff: float | None  # streamed logits pooled as the clip model pools them


@dataclass(frozen=True)
class PredictedNow:
    """The shipped model's latency predicted at pick time, corrected by a speed probe taken then:
    beside the measurement, it tells a predictor error from a device running at another speed."""

    latency_ms: float
    interval_ms: tuple[float, float] | None  # 95%
    speed_factor: float  # the device's speed now over at calibration (median group)
    probe_seconds: float


@dataclass(frozen=True)
class Attempt:
    """A candidate exported and measured; set aside under ``rejected/`` when over the limit."""

    trial: int
    predicted_latency_ms: float
    measured_latency_ms: float
    limit_ms: float
    within_budget: bool
    folder: str


@dataclass(frozen=True)
class FrontMember:
    trial: int
    score: float
    latency_ms: float
    peak_bytes: float
    model_bytes: int
    macs: int
    params: int


@dataclass(frozen=True)
class PickReport:
    study: str
    storage: str
    teacher: str
    task: str
    metric: str  # the task's metric: what ``test_score`` and ``validation_score`` are
    split: str
    test_clips: int
    labels: tuple[str, ...]
    sample_rate: int
    clip_samples: int
    data: dict[str, Any]
    budget: dict[str, Any]  # the ResolvedBudget used (``ResolvedBudget.to_dict``)
    limit_ms: float  # the measured latency the shipped model had to meet
    trial: int
    validation_score: float | None
    final_epochs: int
    predicted_latency_ms: float
    predicted_peak_bytes: float
    predicted_model_bytes: int
    predicted_on: str  # the device profile the prediction came from
    measured_on: dict[str, Any]  # the fingerprint of this machine
    empty_session_peak_bytes: int
    models: tuple[MeasuredModel, ...]
    recipe: dict[str, Any]
    recipe_in_words: tuple[str, ...]
    layers: dict[str, str]  # layer -> runtime format shipped
    teacher_layer_formats: dict[str, str]
    attempts: tuple[Attempt, ...]
    front: tuple[FrontMember, ...]
    seconds: float
    decision: tuple[float, ...] | None = None  # the shipped decision rule's parameters (thresholds)
    streaming: StreamingFacts | None = None  # picked for a stream (``--chunk-ms``)
    mobile: MobileExport | None = None  # the fixed-shape and ORT-format exports, checked
    predicted_now: PredictedNow | None = None  # with a speed probe of this machine, if its profile has one
    paretone_version: str = __version__
    format: str = field(default=PICK_FORMAT)

    def model(self, name: str) -> MeasuredModel:
        return next(m for m in self.models if m.name == name)

    @property
    def picked(self) -> MeasuredModel:
        return self.model(PICKED)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, source: str) -> PickReport:
        if not isinstance(data, dict) or data.get("format") != PICK_FORMAT:
            raise ConfigError(f"{source}: not a {PICK_FORMAT} report; re-run `paretone pick`")
        try:
            return from_plain(cls, data, source)
        except ConfigError as exc:
            raise ConfigError(f"{source}: malformed pick report ({exc}); re-run `paretone pick`") from None

    @classmethod
    def read(cls, path: str | Path) -> PickReport:
        data = read_json(path, missing="run `paretone pick` first", fix="re-run `paretone pick`")
        return cls.from_dict(data, str(path))

    def replace(self, **changes: Any) -> PickReport:
        return dataclasses.replace(self, **changes)
