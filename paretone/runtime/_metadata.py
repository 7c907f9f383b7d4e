"""What a shipped ONNX file says about itself: labels, input format, task, recipe, version.

``pick`` writes these keys into the model's ``metadata_props`` and ``run-model`` reads them, so the
file alone is enough to use the model. The keys live here and nowhere else.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import onnx

from paretone._io import parse_json, write_atomic
from paretone.errors import ConfigError

KEY_LABELS = "paretone.labels"
KEY_SAMPLE_RATE = "paretone.sample_rate"
KEY_CLIP_SAMPLES = "paretone.clip_samples"
KEY_VERSION = "paretone.version"
KEY_RECIPE = "paretone.recipe"
KEY_TASK = "paretone.task"
KEY_THRESHOLDS = "paretone.thresholds"
KEY_CHUNK_SAMPLES = "paretone.chunk_samples"  # a streaming export: samples per call
KEY_HOP_SAMPLES = "paretone.hop_samples"  # samples per output frame (streaming) or window (sliding)
DEFAULT_TASK = "classification"  # models written before tasks were named


@dataclass(frozen=True)
class ModelMetadata:
    labels: tuple[str, ...]
    sample_rate: int
    clip_samples: int
    version: str
    recipe: dict[str, Any] = field(default_factory=dict)
    task: str = DEFAULT_TASK
    thresholds: tuple[float, ...] | None = None  # per label, for multi-label detection
    chunk_samples: int | None = None  # set for a streaming export
    hop_samples: int | None = None  # samples per output frame of a stream

    def to_props(self) -> dict[str, str]:
        props = {
            KEY_LABELS: json.dumps(list(self.labels)),
            KEY_SAMPLE_RATE: str(self.sample_rate),
            KEY_CLIP_SAMPLES: str(self.clip_samples),
            KEY_VERSION: self.version,
            KEY_RECIPE: json.dumps(self.recipe),
            KEY_TASK: self.task,
        }
        if self.thresholds is not None:
            props[KEY_THRESHOLDS] = json.dumps(list(self.thresholds))
        if self.chunk_samples is not None:
            props[KEY_CHUNK_SAMPLES] = str(self.chunk_samples)
        if self.hop_samples is not None:
            props[KEY_HOP_SAMPLES] = str(self.hop_samples)
        return props

    @classmethod
    def from_props(cls, props: dict[str, str], source: str) -> ModelMetadata:
        """Parse ``metadata_props``; ConfigError naming ``source`` if they are not paretone's."""
        fix = "use a model written by `paretone pick`"
        try:
            labels = parse_json(props[KEY_LABELS], f"{source} metadata {KEY_LABELS}", fix=fix)
            if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
                raise ValueError("labels must be a non-empty list of strings")
            rate, samples = int(props[KEY_SAMPLE_RATE]), int(props[KEY_CLIP_SAMPLES])
            if rate <= 0 or samples <= 0:
                raise ValueError("sample rate and clip length must be positive")
            thresholds = None
            if KEY_THRESHOLDS in props:
                raw = parse_json(props[KEY_THRESHOLDS], f"{source} metadata {KEY_THRESHOLDS}", fix=fix)
                thresholds = tuple(float(x) for x in raw)
                if len(thresholds) != len(labels):
                    raise ValueError("one threshold per label")
            recipe = parse_json(props.get(KEY_RECIPE, "{}"), f"{source} metadata {KEY_RECIPE}", fix=fix)
            chunk = int(props[KEY_CHUNK_SAMPLES]) if KEY_CHUNK_SAMPLES in props else None
            hop = int(props[KEY_HOP_SAMPLES]) if KEY_HOP_SAMPLES in props else None
            if (chunk is not None and chunk <= 0) or (hop is not None and hop <= 0):
                raise ValueError("chunk and hop lengths must be positive")
        except KeyError as exc:
            raise ConfigError(f"{source}: no paretone metadata ({exc.args[0]} missing); {fix}") from None
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{source}: malformed paretone metadata ({exc}); {fix}") from None
        return cls(
            tuple(labels),
            rate,
            samples,
            props.get(KEY_VERSION, "unknown"),
            recipe if isinstance(recipe, dict) else {},
            props.get(KEY_TASK, DEFAULT_TASK),
            thresholds,
            chunk,
            hop,
        )

    @classmethod
    def of_session(cls, session: Any, source: str) -> ModelMetadata:
        return cls.from_props(dict(session.get_modelmeta().custom_metadata_map), source)


def stamp_metadata(path: str | os.PathLike[str], metadata: ModelMetadata | dict[str, str]) -> None:
    """Add ``metadata`` to the model's metadata_props, atomically (other keys are kept)."""
    props = metadata.to_props() if isinstance(metadata, ModelMetadata) else metadata
    model = onnx.load(str(path))
    existing = {p.key: p for p in model.metadata_props}
    for key, value in props.items():
        prop = existing.get(key) or model.metadata_props.add()
        prop.key, prop.value = key, value
    write_atomic(path, lambda tmp: onnx.save(model, str(tmp)))
