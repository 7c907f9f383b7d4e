"""A polyphonic sound-event set made from FSDD: 1-3 spoken digits per clip over background noise.

Seeded and documented, so anyone can rebuild the same set (``paretone data mix``). Written with our
own code rather than scaper, the soundscape library DCASE's synthetic sets use: scaper needs
SoX, which this machine kind cannot install. The recipe is scaper's in miniature:

- Each clip takes its events from **one speaker** and from **one side of FSDD's official split**
  (recording index 10-49 -> fold 1, 5-9 -> fold 2, 0-4 -> fold 3), so the manifest's default split
  (``fold:3``, validation fold 2) keeps recordings disjoint as the official split does, and
  ``speaker:NAME`` keeps voices disjoint.
- 1 to ``max_events`` distinct digits at uniformly random onsets (events may overlap), each at a
  random level; pink background noise at a random event-to-noise ratio.
- **Strong labels**: each event's onset and offset are where the digit's energy is within 30 dB of
  its peak (FSDD recordings carry some silence), written beside every clip
  (``<clip>.events.csv``) and for the whole set (``events.csv``, the sed_eval/DCASE columns).
- **Long recordings** (minutes) for streaming: one per speaker, from its fold-3 recordings, digits
  separated by random pauses (sometimes overlapping), with strong labels beside them.
"""

from __future__ import annotations

import csv
import json
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile

from paretone._version import __version__
from paretone.audio._catalog import Catalog, Clip
from paretone.audio._events import Event, write_events
from paretone.audio._loading import read_waveform
from paretone.errors import ConfigError, DataError

MANIFEST, EVENTS, SETTINGS, CLIPS, LONG = "mixtures.csv", "events.csv", "mix.json", "clips", "long"
MIX_ENTRIES = (MANIFEST, EVENTS, SETTINGS, CLIPS, LONG)
FOLD_OF_INDEX = ((10, 1), (5, 2), (0, 3))  # (lowest FSDD recording index, fold)
FOLD_SHARE = {1: 0.8, 2: 0.1, 3: 0.1}  # of the clips, as the official split's train/val/test
ACTIVE_DB = -30.0  # an event spans the frames within this many dB of its peak


@dataclass(frozen=True)
class MixSettings:
    """How the set is drawn; every field is recorded in ``mix.json``."""

    clips: int = 3000
    seconds: float = 2.0
    max_events: int = 3
    snr_db: tuple[float, float] = (5.0, 20.0)  # event level over the background noise
    gain_db: tuple[float, float] = (-6.0, 0.0)  # per event
    long_minutes: float = 2.0
    seed: int = 0
    sample_rate: int = 8000

    def __post_init__(self) -> None:
        if self.clips < 10:
            raise ConfigError(f"--clips must be at least 10, got {self.clips}")
        if not 0.5 <= self.seconds <= 60:
            raise ConfigError(f"--seconds must be between 0.5 and 60, got {self.seconds}")
        if not 1 <= self.max_events <= 9:
            raise ConfigError(f"--max-events must be between 1 and 9, got {self.max_events}")
        if self.snr_db[0] > self.snr_db[1]:
            raise ConfigError(f"--snr-db low,high: low must not exceed high, got {self.snr_db}")
        if not 0 <= self.long_minutes <= 60:
            raise ConfigError(f"--long-minutes must be between 0 and 60, got {self.long_minutes}")


def fold_of(clip: Clip) -> int:
    if clip.index is None:
        raise DataError(f"{clip.path}: mixing needs FSDD recordings ({{label}}_{{speaker}}_{{index}}.wav)")
    return next(fold for low, fold in FOLD_OF_INDEX if clip.index >= low)


def active_span(wave: np.ndarray, rate: int) -> tuple[int, int]:
    """First and one-past-last sample of the 10 ms frames within ACTIVE_DB of the loudest one."""
    frame = max(1, rate // 100)
    frames = len(wave) // frame
    if frames == 0:
        return 0, len(wave)
    energy = (wave[: frames * frame].reshape(frames, frame) ** 2).mean(axis=1)
    active = np.flatnonzero(energy >= energy.max() * 10 ** (ACTIVE_DB / 10))
    return int(active[0] * frame), int((active[-1] + 1) * frame)


def pink_noise(samples: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise with a 1/f power spectrum (shaped white noise)."""
    spectrum = np.fft.rfft(rng.standard_normal(samples))
    freqs = np.fft.rfftfreq(samples)
    spectrum[1:] /= np.sqrt(freqs[1:])
    spectrum[0] = 0
    noise = np.fft.irfft(spectrum, n=samples)
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


class _Sources:
    """FSDD recordings by (speaker, fold), decoded once, each with its active span."""

    def __init__(self, catalog: Catalog, rate: int) -> None:
        if catalog.layout != "fsdd":
            raise DataError(f"{catalog.root}: `paretone data mix` mixes FSDD; point --data at FSDD")
        self.rate = rate
        self.by_group: dict[tuple[str, int], list[Clip]] = defaultdict(list)
        for clip in catalog.clips:
            self.by_group[(str(clip.speaker), fold_of(clip))].append(clip)
        self._cache: dict[Path, tuple[np.ndarray, int, int]] = {}

    def speakers(self) -> list[str]:
        return sorted({speaker for speaker, _ in self.by_group})

    def wave(self, clip: Clip) -> tuple[np.ndarray, int, int]:
        if clip.path not in self._cache:
            info = soundfile.info(str(clip.path))
            samples = round(info.frames * self.rate / info.samplerate)
            wave = read_waveform(clip.path, sample_rate=self.rate, clip_samples=samples).numpy()
            wave = wave / (np.sqrt(np.mean(wave**2)) + 1e-9)
            self._cache[clip.path] = (wave.astype(np.float64), *active_span(wave, self.rate))
        return self._cache[clip.path]


def _place(canvas: np.ndarray, digit: np.ndarray, start: int, gain: float, rate: int, label: str) -> Event:
    """Add the (trimmed) ``digit`` at ``start``; the event is where it sounds."""
    end = min(len(canvas), start + len(digit))
    canvas[start:end] += gain * digit[: end - start]
    return Event(round(start / rate, 3), round(end / rate, 3), label)


def _finish(canvas: np.ndarray, rng: np.random.Generator, settings: MixSettings) -> np.ndarray:
    snr = rng.uniform(*settings.snr_db)
    noise = pink_noise(len(canvas), rng) * 10 ** (-snr / 20)  # events are at unit RMS before gain
    mixed = canvas + noise
    peak = np.abs(mixed).max()
    return (mixed * (0.5 / peak if peak > 0 else 1.0)).astype(np.float32)


def _mixture(
    sources: _Sources, speaker: str, fold: int, rng: np.random.Generator, settings: MixSettings
) -> tuple[np.ndarray, list[Event]]:
    rate, samples = settings.sample_rate, round(settings.seconds * settings.sample_rate)
    pool = sources.by_group[(speaker, fold)]
    digits = sorted({c.label for c in pool})
    count = int(rng.integers(1, min(settings.max_events, len(digits)) + 1))
    chosen = rng.choice(digits, size=count, replace=False)
    canvas, events = np.zeros(samples), []
    for digit in chosen:
        options = [c for c in pool if c.label == digit]
        wave, start, stop = sources.wave(options[int(rng.integers(len(options)))])
        wave = wave[start:stop]  # the digit alone: its onset is where it is placed
        onset = int(rng.integers(0, max(0, samples - len(wave)) + 1))
        gain = 10 ** (rng.uniform(*settings.gain_db) / 20)
        events.append(_place(canvas, wave, onset, gain, rate, str(digit)))
    return _finish(canvas, rng, settings), sorted(events, key=lambda e: (e.onset_s, e.label))


def _long_recording(
    sources: _Sources, speaker: str, rng: np.random.Generator, settings: MixSettings
) -> tuple[np.ndarray, list[Event]]:
    rate = settings.sample_rate
    samples = round(settings.long_minutes * 60 * rate)
    pool = sources.by_group[(speaker, 3)]
    canvas, events, cursor = np.zeros(samples), [], int(rate * rng.uniform(0.2, 1.0))
    while True:
        clip = pool[int(rng.integers(len(pool)))]
        wave, start, stop = sources.wave(clip)
        wave = wave[start:stop]
        if cursor + len(wave) > samples:
            break
        gain = 10 ** (rng.uniform(*settings.gain_db) / 20)
        events.append(_place(canvas, wave, cursor, gain, rate, clip.label))
        overlap = rng.random() < 0.2  # the next digit starts before this one ends
        gap = -rng.uniform(0.1, 0.5) * len(wave) if overlap else rate * rng.uniform(0.2, 2.0)
        cursor = max(cursor + 1, int(cursor + len(wave) + gap))
    return _finish(canvas, rng, settings), events


def mix_dataset(
    catalog: Catalog,
    out: str | os.PathLike[str],
    settings: MixSettings,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, object]:
    """Write the set into ``out`` (which the caller has claimed); returns what ``mix.json`` holds."""
    root = Path(out)
    sources = _Sources(catalog, settings.sample_rate)
    rng = np.random.default_rng(settings.seed)
    speakers = sources.speakers()
    (root / CLIPS).mkdir(parents=True, exist_ok=True)
    folds = rng.choice(list(FOLD_SHARE), size=settings.clips, p=list(FOLD_SHARE.values()))
    rows, all_events = [], []
    total = settings.clips + len(speakers)
    for i, fold in enumerate(folds):
        speaker = speakers[int(rng.integers(len(speakers)))]
        wave, events = _mixture(sources, speaker, int(fold), rng, settings)
        name = f"mix_{i:05d}"
        soundfile.write(root / CLIPS / f"{name}.wav", wave, settings.sample_rate, subtype="PCM_16")
        write_events(root / CLIPS / f"{name}.events.csv", events)
        labels = ";".join(sorted({e.label for e in events}))
        rows.append([f"{CLIPS}/{name}.wav", labels, int(fold), speaker])
        all_events += [[f"{CLIPS}/{name}.wav", e.onset_s, e.offset_s, e.label] for e in events]
        if progress is not None:
            progress(i + 1, total)
    with open(root / MANIFEST, "w", newline="") as handle:
        csv.writer(handle).writerows([["path", "labels", "fold", "speaker"], *rows])
    long_files = []
    if settings.long_minutes > 0:
        (root / LONG).mkdir(exist_ok=True)
        for j, speaker in enumerate(speakers):
            wave, events = _long_recording(sources, speaker, rng, settings)
            name = f"long_{speaker}"
            soundfile.write(root / LONG / f"{name}.wav", wave, settings.sample_rate, subtype="PCM_16")
            write_events(root / LONG / f"{name}.events.csv", events)
            all_events += [[f"{LONG}/{name}.wav", e.onset_s, e.offset_s, e.label] for e in events]
            long_files.append(f"{LONG}/{name}.wav")
            if progress is not None:
                progress(settings.clips + j + 1, total)
    with open(root / EVENTS, "w", newline="") as handle:
        csv.writer(handle).writerows([["filename", "onset", "offset", "event_label"], *all_events])
    summary = {
        "format": "paretone.mix/1",
        "paretone_version": __version__,
        "source": str(catalog.root),
        "settings": asdict(settings),
        "clips": settings.clips,
        "clips_per_fold": {str(f): int((folds == f).sum()) for f in FOLD_SHARE},
        "events": sum(len(r[1].split(";")) for r in rows),
        "long_recordings": long_files,
        "split_hint": "default split fold:3 keeps recordings disjoint; speaker:NAME keeps voices disjoint",
    }
    (root / SETTINGS).write_text(json.dumps(summary, indent=2) + "\n")
    return summary
