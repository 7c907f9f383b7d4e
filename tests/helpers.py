"""Helpers the tests share (fixtures live in conftest.py)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile

FSDD = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "fsdd"


def write_tone(path: Path, *, seconds: float = 0.5, rate: int = 8000, freq: float = 440.0) -> Path:
    """A real WAV file holding a sine tone."""
    t = np.arange(int(seconds * rate)) / rate
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate)
    return path


def run_cli(*args: str, cwd=None, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """The real command line in a subprocess (exit code, stdout, stderr as a user sees them)."""
    return subprocess.run(
        [sys.executable, "-m", "paretone.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )


def invoke_cli(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    """The command line in this process (click's runner), read as ``run_cli``'s result: for
    refusals, where a fresh interpreter importing torch (4-5 s) buys nothing. Any exception but the
    command's own exit is raised, so a traceback a user would see fails the test."""
    from click.testing import CliRunner

    from paretone.cli import cli

    with contextlib.chdir(cwd) if cwd is not None else contextlib.nullcontext():
        result = CliRunner().invoke(cli, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


def free_port() -> int:
    """A TCP port nothing listens on now, on loopback (for servers a test starts)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_digest(root: Path) -> dict[str, str]:
    """Every file below ``root`` (relative path -> sha256): what a refused command must leave alone."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(root.rglob("*"))
    }


def synthetic_profile(
    model,
    directory: Path,
    device: str,
    *,
    ns_per_mac: float,
    overhead_ms: float = 0.05,
    operators=None,
    chunk_samples: int | None = None,
):
    """A device profile whose kernel latency is a known function of MACs: 2 us + ``ns_per_mac`` ns per
    MAC (the front-end: 2 us), whole models the sum + ``overhead_ms``. Which candidate fits a budget is then
    deterministic on any machine; a tiny ``ns_per_mac`` makes a predictor far too optimistic."""
    from paretone.hw_models import (
        DeviceProfile,
        KernelMeasurement,
        ModelMeasurement,
        calibration_kernels,
        random_models,
    )

    def ms(kernel) -> float:
        return 0.002 + (0.0 if kernel.kind == "frontend" else kernel.macs * ns_per_mac * 1e-6)

    profile = DeviceProfile(device, {"threads": 1}, {"latency_ms": 0.0, "file_bytes": 0, "peak_bytes": 0})
    profile.add_kernels(
        [
            KernelMeasurement(k, ms(k), 4 * k.params + 100)
            for k in calibration_kernels(model.config, operators, chunk_samples=chunk_samples)
        ]
    )
    models = random_models(model, 6, seed=0, prefix="calibration")
    profile.add_models(
        [
            ModelMeasurement(
                m.name,
                m.kernels,
                sum(ms(k) for k in m.kernels) + overhead_ms,
                4 * sum(k.params for k in m.kernels) + 2000,
                10**6 + 8 * sum(k.params for k in m.kernels),
            )
            for m in models
        ]
    )
    profile.save(directory / device / "profile.json")
    return profile


def record(fault: str, **facts) -> None:
    """Append what a fault-injection test observed to $PARETONE_RELIABILITY_LOG (JSON lines), so
    benchmarks/reliability.py reports the very figures the tests assert on. No-op otherwise."""
    path = os.environ.get("PARETONE_RELIABILITY_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(json.dumps({"fault": fault, **facts}) + "\n")


def make_driver(teacher: Path, profile, tmp_path: Path, **overrides):
    """A search driver predicting with ``profile``: one epoch per trial (or ``epochs``), random
    sampler, storage and trial folders under ``tmp_path``; ``overrides`` are further SearchSettings
    (and ``speed``, the driver's ``SpeedWatch``)."""
    from paretone.hw_models import LatencyModel, MemoryModel
    from paretone.search import Driver, SearchSettings

    speed = overrides.pop("speed", None)
    settings = SearchSettings(
        teacher=teacher,
        study=overrides.pop("study", "s"),
        storage=overrides.pop("storage", f"sqlite:///{tmp_path / 'study.db'}"),
        trials=overrides.pop("trials", 4),
        epochs=overrides.pop("epochs", 1),
        sampler=overrides.pop("sampler", "random"),
        runs_dir=overrides.pop("runs_dir", tmp_path / "runs"),
        **overrides,
    )
    return Driver(
        settings,
        latency=LatencyModel(profile),
        memory=MemoryModel(profile),
        device=profile.device,
        speed=speed,
    )


def is_one_line(exc: BaseException) -> bool:
    """A user error reads as one non-empty line (the CLI prints it as is)."""
    return bool(str(exc).strip()) and "\n" not in str(exc)


def assert_one_line(exc: BaseException) -> None:
    assert is_one_line(exc), f"not one line: {str(exc)!r}"
