"""The device profile: raw measurements of one device, the single source of truth for prediction.

A JSON file (``runs/devices/<name>/profile.json`` by default) holding the device fingerprint, the
timing of an empty session (``baseline``), one record per micro-benchmarked kernel and one per
measured whole model. Predictors are fitted from it at load time, never stored: editing or
extending the profile is all it takes to change a prediction.

Measurements from different ONNX Runtime versions, CPUs or thread counts are never mixed: they
describe different devices, so extending a profile with them is refused.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paretone._io import read_format_json, read_json, write_json
from paretone._version import __version__
from paretone.errors import ConfigError
from paretone.models import Kernel

# /2: front-end kernels are timed per implementation; /3: and per padding (causal for streaming)
PROFILE_FORMAT = "paretone.device-profile/3"
OLD_PROFILE_FORMATS = ("paretone.device-profile/1", "paretone.device-profile/2")
PROFILE_FILE = "profile.json"
# fingerprint fields that must agree for two sets of measurements to describe one device
IDENTITY_FIELDS = ("cpu", "machine", "system", "onnxruntime", "threads")


def _positive(value: Any, what: str) -> float:
    """A measured time: a finite positive number (a profile holding anything else predicts nonsense)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) and value > 0)
    ):
        raise ValueError(f"{what}: latency_ms {value!r} is not a positive finite number")
    return float(value)


def _bytes(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what}: a byte count {value!r} is not a non-negative whole number")
    return value


@dataclass(frozen=True)
class KernelMeasurement:
    kernel: Kernel
    latency_ms: float  # median of ``repeats`` runs, empty-session baseline included
    file_bytes: int  # size of the micro-model file

    def to_dict(self) -> dict[str, Any]:
        return {**self.kernel.to_dict(), "latency_ms": self.latency_ms, "file_bytes": self.file_bytes}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KernelMeasurement:
        kernel = Kernel.from_dict(data)
        return cls(kernel, _positive(data["latency_ms"], kernel.key), _bytes(data["file_bytes"], kernel.key))


@dataclass(frozen=True)
class ModelMeasurement:
    """A whole exported model: its kernels (so it can be predicted) and what it measured."""

    name: str
    kernels: tuple[Kernel, ...]
    latency_ms: float
    file_bytes: int
    peak_bytes: int | None = None  # resident-memory rise from loading and running it
    source: str = "calibration"  # or "search", "pick": who added it
    recipe: dict[str, Any] | None = None  # the recipe over the calibrated teacher, to re-export it
    tensor_peak_bytes: int | None = None  # ONNX Runtime's allocator peak (runtime.measure_memory)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "latency_ms": self.latency_ms,
            "file_bytes": self.file_bytes,
            "peak_bytes": self.peak_bytes,
            "tensor_peak_bytes": self.tensor_peak_bytes,
            "recipe": self.recipe,
            "kernels": [k.to_dict() for k in self.kernels],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMeasurement:
        name = str(data["name"])
        kernels = tuple(Kernel.from_dict(k) for k in data["kernels"])
        if not kernels:
            raise ValueError(f"model {name} lists no kernels")
        return cls(
            name=name,
            kernels=kernels,
            latency_ms=_positive(data["latency_ms"], name),
            file_bytes=_bytes(data["file_bytes"], name),
            peak_bytes=None if data.get("peak_bytes") is None else _bytes(data["peak_bytes"], name),
            source=str(data.get("source", "calibration")),
            recipe=data.get("recipe"),
            tensor_peak_bytes=None
            if data.get("tensor_peak_bytes") is None
            else _bytes(data["tensor_peak_bytes"], name),
        )


@dataclass(frozen=True)
class Sentinel:
    """A kernel of the speed probe (``_probe.py``) and the probe's time for it at calibration."""

    group: str
    kernel: Kernel
    latency_ms: float  # the probe's quietest-pass median, empty-session baseline included

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "latency_ms": self.latency_ms, "kernel": self.kernel.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sentinel:
        kernel = Kernel.from_dict(data["kernel"])
        return cls(str(data["group"]), kernel, _positive(data["latency_ms"], f"probe {kernel.key}"))


@dataclass(frozen=True)
class Anchor:
    """A whole calibration model the speed probe times (``_probe.py``), with its time then."""

    name: str  # the profile model's name; its ONNX file lies in the probe folder
    latency_ms: float  # the probe's quietest-pass median at calibration

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "latency_ms": self.latency_ms}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Anchor:
        name = str(data["name"])
        return cls(name, _positive(data["latency_ms"], f"probe anchor {name}"))


@dataclass
class DeviceProfile:
    device: str
    fingerprint: dict[str, Any]
    baseline: dict[str, float] = field(default_factory=dict)  # empty session: latency_ms, peak_bytes
    kernels: dict[str, KernelMeasurement] = field(default_factory=dict)  # by kernel key
    models: dict[str, ModelMeasurement] = field(default_factory=dict)  # by name
    probe: list[Sentinel] = field(default_factory=list)  # the speed probe at calibration, one per group
    anchors: list[Anchor] = field(default_factory=list)  # whole models the probe times beside them

    @property
    def threads(self) -> int:
        return int(self.fingerprint["threads"])

    def check_same_device(self, fingerprint: dict[str, Any], source: str) -> None:
        """ConfigError unless ``fingerprint`` describes this profile's device."""
        for name in IDENTITY_FIELDS:
            if self.fingerprint.get(name) != fingerprint.get(name):
                raise ConfigError(
                    f"{source} was measured with {name}={fingerprint.get(name)!r} but device profile "
                    f"{self.device!r} holds {name}={self.fingerprint.get(name)!r}; measurements of "
                    "different devices are not mixed: calibrate under another --device name"
                )

    def add_kernels(self, measurements: list[KernelMeasurement]) -> None:
        self.kernels.update({m.kernel.key: m for m in measurements})

    def add_models(self, measurements: list[ModelMeasurement]) -> None:
        """Append (or replace, by name) whole-model measurements; refit a LatencyModel to use them."""
        self.models.update({m.name: m for m in measurements})

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": PROFILE_FORMAT,
            "paretone_version": __version__,
            "device": self.device,
            "fingerprint": self.fingerprint,
            "baseline": self.baseline,
            "kernels": [m.to_dict() for m in sorted(self.kernels.values(), key=lambda m: m.kernel.key)],
            "models": [m.to_dict() for m in self.models.values()],
            "probe": [s.to_dict() for s in self.probe],
            "anchors": [a.to_dict() for a in self.anchors],
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        write_json(path, self.to_dict())
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DeviceProfile:
        if is_outdated(path):
            raise ConfigError(
                f"{path}: written by an older paretone (its kernels no longer match the exporter); "
                "re-run `paretone calibrate` for this device (it keeps the old file as profile.old.json)"
            )
        data = read_format_json(
            path,
            PROFILE_FORMAT,
            missing="create the device profile with `paretone calibrate --device NAME`",
            fix="re-run `paretone calibrate`",
        )
        try:
            baseline = dict(data.get("baseline", {}))
            for key, number in baseline.items():
                if (
                    isinstance(number, bool)
                    or not isinstance(number, int | float)
                    or not (math.isfinite(number) and number >= 0)
                ):
                    raise ValueError(f"baseline {key} {number!r} is not a non-negative finite number")
            profile = cls(str(data["device"]), dict(data["fingerprint"]), baseline)
            if not isinstance(profile.fingerprint.get("threads"), int) or profile.threads < 1:
                raise ValueError("fingerprint.threads must be a positive whole number")
            profile.add_kernels([KernelMeasurement.from_dict(k) for k in data.get("kernels", [])])
            profile.add_models([ModelMeasurement.from_dict(m) for m in data.get("models", [])])
            profile.probe = [Sentinel.from_dict(s) for s in data.get("probe", [])]
            profile.anchors = [Anchor.from_dict(a) for a in data.get("anchors", [])]
            unknown = [a.name for a in profile.anchors if a.name not in profile.models]
            if unknown:
                raise ValueError(f"probe anchor {unknown[0]} is not one of the profile's whole models")
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            detail = exc.args[0] if exc.args else type(exc).__name__
            raise ConfigError(
                f"{path}: malformed device profile ({detail}); re-run `paretone calibrate` for this device"
            ) from None
        return profile


def is_outdated(path: str | os.PathLike[str]) -> bool:
    """True for a profile in a format an older paretone wrote (recalibrating replaces it)."""
    try:
        data = read_json(path, missing="", fix="")
    except ConfigError:
        return False
    return isinstance(data, dict) and data.get("format") in OLD_PROFILE_FORMATS


def profile_path(profile_dir: str | os.PathLike[str], device: str) -> Path:
    if not device or any(c in device for c in "/\\") or device.startswith("."):
        raise ConfigError(f"device name {device!r}: use letters, digits, '-' or '_' (it names a folder)")
    return Path(profile_dir) / device / PROFILE_FILE
