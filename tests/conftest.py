from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

FSDD = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "fsdd"


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


def write_tone(path: Path, *, seconds: float = 0.5, rate: int = 8000, freq: float = 440.0) -> Path:
    """A real WAV file holding a sine tone."""
    t = np.arange(int(seconds * rate)) / rate
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate)
    return path
