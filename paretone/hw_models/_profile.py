"""The device profile: raw measurements of one device, the single source of truth for prediction.

A JSON file (``runs/devices/<name>/profile.json`` by default) holding the device fingerprint, the
timing of an empty session (``baseline``), one record per micro-benchmarked kernel and one per
measured whole model. Predictors are fitted from it at load time, never stored: editing or
extending the profile is all it takes to change a prediction.

Measurements from different ONNX Runtime versions, CPUs or thread counts are never mixed: they
describe different devices, so extending a profile with them is refused.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paretone import __version__
from paretone._io import read_format_json, write_json
from paretone.errors import ConfigError
from paretone.hw_models._kernels import Kernel

PROFILE_FORMAT = "paretone.device-profile/2"  # /2: front-end kernels are timed per implementation
OLD_PROFILE_FORMATS = ("paretone.device-profile/1",)
PROFILE_FILE = "profile.json"
# fingerprint fields that must agree for two sets of measurements to describe one device
IDENTITY_FIELDS = ("cpu", "machine", "system", "onnxruntime", "threads")


@dataclass(frozen=True)
class KernelMeasurement:
    kernel: Kernel
    latency_ms: float  # median of ``repeats`` runs, empty-session baseline included
    file_bytes: int  # size of the micro-model file

    def to_dict(self) -> dict[str, Any]:
        return {**self.kernel.to_dict(), "latency_ms": self.latency_ms, "file_bytes": self.file_bytes}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KernelMeasurement:
        return cls(Kernel.from_dict(data), float(data["latency_ms"]), int(data["file_bytes"]))


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "latency_ms": self.latency_ms,
            "file_bytes": self.file_bytes,
            "peak_bytes": self.peak_bytes,
            "recipe": self.recipe,
            "kernels": [k.to_dict() for k in self.kernels],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMeasurement:
        return cls(
            name=str(data["name"]),
            kernels=tuple(Kernel.from_dict(k) for k in data["kernels"]),
            latency_ms=float(data["latency_ms"]),
            file_bytes=int(data["file_bytes"]),
            peak_bytes=None if data.get("peak_bytes") is None else int(data["peak_bytes"]),
            source=str(data.get("source", "calibration")),
            recipe=data.get("recipe"),
        )


@dataclass
class DeviceProfile:
    device: str
    fingerprint: dict[str, Any]
    baseline: dict[str, float] = field(default_factory=dict)  # empty session: latency_ms, peak_bytes
    kernels: dict[str, KernelMeasurement] = field(default_factory=dict)  # by kernel key
    models: dict[str, ModelMeasurement] = field(default_factory=dict)  # by name

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
            profile = cls(str(data["device"]), dict(data["fingerprint"]), dict(data.get("baseline", {})))
            profile.add_kernels([KernelMeasurement.from_dict(k) for k in data.get("kernels", [])])
            profile.add_models([ModelMeasurement.from_dict(m) for m in data.get("models", [])])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"{path}: malformed device profile ({exc!r}); re-run `paretone calibrate`"
            ) from None
        return profile


def is_outdated(path: str | os.PathLike[str]) -> bool:
    """True for a profile in a format an older paretone wrote (recalibrating replaces it)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") in OLD_PROFILE_FORMATS


def profile_path(profile_dir: str | os.PathLike[str], device: str) -> Path:
    if not device or any(c in device for c in "/\\") or device.startswith("."):
        raise ConfigError(f"device name {device!r}: use letters, digits, '-' or '_' (it names a folder)")
    return Path(profile_dir) / device / PROFILE_FILE
