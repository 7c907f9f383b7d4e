"""Fixtures shared by the whole suite: the real FSDD data and one tiny teacher trained on it.

Tests marked ``slow`` start Ray or PostgreSQL, train for more than a few seconds or calibrate for
real; ``python -m pytest -q -m "not slow"`` runs the rest in a few minutes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import FSDD, run_cli, synthetic_profile


def pytest_terminal_summary(terminalreporter) -> None:
    """The CPU and its SIMD flags, last (also under -q): ONNX Runtime's int8 kernels differ by them."""
    from paretone.runtime import fingerprint

    device = fingerprint(threads=1)
    flags = ", ".join(device["cpu_flags"])
    terminalreporter.write_line(f"cpu: {device['cpu']} ({flags}); onnxruntime {device['onnxruntime']}")


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for a module's in-process searches: a driver joins a Ray that is running and
    leaves it running (as it would a cluster), and starting one costs 7-10 s here."""
    import ray

    from paretone.search._workers import start_ray

    started = start_ray(None, workers=2)  # as a search starts its own
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="session")
def fsdd() -> Path:
    """The real FSDD folder beside the checkout."""
    if not (FSDD / "recordings").is_dir():
        pytest.skip(f"FSDD not found at {FSDD}: clone Jakobovski/free-spoken-digit-dataset there")
    return FSDD.resolve()


@pytest.fixture(scope="session")
def fsdd_catalog(fsdd: Path):
    from paretone.audio import open_dataset

    return open_dataset(fsdd)


@pytest.fixture(scope="session")
def tiny_teacher(fsdd, tmp_path_factory) -> Path:
    """A one-block AST trained for two epochs on FSDD by `paretone train` (about 15 s, once)."""
    out = tmp_path_factory.mktemp("teacher") / "teacher"
    result = run_cli(
        "train", "--data", str(fsdd), "--dim", "32", "--depth", "1", "--heads", "2", "--epochs", "2",
        "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (out.parent / "train.stdout").write_text(result.stdout)  # what the user saw, for the CLI tests
    return out


SYNTHETIC = "synthetic"  # the device name of ``synthetic_device``


@pytest.fixture(scope="session")
def synthetic_device(tiny_teacher, tmp_path_factory):
    """(profile, profile folder) of a device whose kernels take 2 us + 1 ns per MAC (front-end:
    2 us) and whole models the sum + 0.05 ms: which candidate fits a budget is the same on any machine."""
    from paretone.models import load_model

    directory = tmp_path_factory.mktemp("devices")
    return synthetic_profile(load_model(tiny_teacher).model, directory, SYNTHETIC, ns_per_mac=1.0), directory


@pytest.fixture(scope="session")
def tiny_mixtures(fsdd, tmp_path_factory) -> Path:
    """A small polyphonic set made by `paretone data mix` (160 two-second clips, 0.2-min long recordings)."""
    out = tmp_path_factory.mktemp("mix") / "mix"
    result = run_cli(
        "data", "mix", "--data", str(fsdd), "--out", str(out), "--clips", "160", "--long-minutes", "0.2"
    )
    assert result.returncode == 0, result.stderr
    return out
