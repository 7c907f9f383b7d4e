"""The data's own audio format: the sample rate and clip length a model of this dataset should take.

Read from file headers only (a second for FSDD's 3,000 files). The rate is the most common one, so
a few odd files are resampled rather than every file; the clip length is the longest clip, except
that the longest 1% may be cut (one stray long recording should not multiply every clip's cost),
rounded up to a quarter second and capped at ``MAX_CLIP_SECONDS``. FSDD: 8 kHz, 1 s (its longest
file is 2.3 s, 0.7% are longer than 1 s). The STFT keeps a 32 ms window and a 10 ms hop at every
rate.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import soundfile

from paretone.audio._catalog import Clip
from paretone.audio._frontend import FrontEndConfig
from paretone.errors import ConfigError, DataError

MAX_CLIP_SECONDS = 10.0
OUTLIER_SHARE = 0.01  # the longest clips that may be cut
STEP_SECONDS = 0.25


@dataclass(frozen=True)
class AudioFormat:
    """What a dataset's files hold, and the input format chosen for its models."""

    sample_rate: int
    clip_seconds: float
    longest_seconds: float
    files: int
    cut: int  # files longer than ``clip_seconds`` (centre-cropped when read)
    resampled: int  # files at another rate than ``sample_rate``

    @property
    def clip_samples(self) -> int:
        return round(self.clip_seconds * self.sample_rate)

    def note(self) -> str | None:
        """One line for the user when files do not fit the format as they are, else None."""
        parts = []
        if self.cut:
            parts.append(
                f"{self.cut} of {self.files} clips are longer than {self.clip_seconds:g} s "
                f"(longest {self.longest_seconds:.2f} s) and are centre-cropped; "
                "pass --clip-seconds to change"
            )
        if self.resampled:
            parts.append(f"{self.resampled} clips are resampled to {self.sample_rate} Hz")
        return "; ".join(parts) or None

    def front_end(self, **overrides: object) -> FrontEndConfig:
        """The log-mel front-end for this format: 32 ms window (a power of two), 10 ms hop."""
        n_fft = 2 ** round(math.log2(0.032 * self.sample_rate))
        hop = max(1, round(self.sample_rate / 100))
        return FrontEndConfig(
            sample_rate=self.sample_rate,
            clip_samples=self.clip_samples,
            n_fft=n_fft,
            hop_length=hop,
            **overrides,  # type: ignore[arg-type]
        )


def audio_format(
    clips: Sequence[Clip], *, sample_rate: int | None = None, clip_seconds: float | None = None
) -> AudioFormat:
    """The dataset's format (see the module docstring); ``sample_rate``/``clip_seconds`` override."""
    if sample_rate is not None and (isinstance(sample_rate, bool) or sample_rate < 1000):
        raise ConfigError(f"--sample-rate must be a whole number of Hz >= 1000, got {sample_rate!r}")
    if clip_seconds is not None and not 0.05 <= clip_seconds <= 600:
        raise ConfigError(f"--clip-seconds must be between 0.05 and 600, got {clip_seconds!r}")
    rates, durations = Counter(), []
    for clip in clips:
        try:
            info = soundfile.info(str(clip.path))
        except (soundfile.LibsndfileError, RuntimeError, OSError) as exc:
            raise DataError(
                f"{clip.path}: cannot read audio ({exc}); replace the file or remove it from the data"
            ) from None
        rates[int(info.samplerate)] += 1
        durations.append(info.frames / info.samplerate if info.samplerate else 0.0)
    if not durations:
        raise DataError("no clips to survey; point --data at the audio")
    rate = sample_rate or rates.most_common(1)[0][0]
    lengths = np.array(durations)
    if clip_seconds is None:
        covered = float(np.quantile(lengths, 1 - OUTLIER_SHARE, method="higher"))
        steps = max(1, math.ceil(covered / STEP_SECONDS))
        clip_seconds = min(MAX_CLIP_SECONDS, steps * STEP_SECONDS)
    return AudioFormat(
        sample_rate=rate,
        clip_seconds=float(clip_seconds),
        longest_seconds=float(lengths.max()),
        files=len(durations),
        cut=int((lengths > clip_seconds + 1e-9).sum()),
        resampled=sum(n for r, n in rates.items() if r != rate),
    )
