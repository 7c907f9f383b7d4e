"""Reading audio: soundfile for decoding, torchaudio for resampling, fixed length, deterministic."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import soundfile
import torch
import torchaudio.functional as AF
from rich.progress import Progress

from paretone.audio._catalog import Clip
from paretone.audio._frontend import FrontEndConfig
from paretone.audio._splits import Splits
from paretone.errors import DataError

Encode = Callable[[Sequence[tuple[str, ...]], Sequence[str]], torch.Tensor]  # (labels per clip, order)


def class_indices(label_sets: Sequence[tuple[str, ...]], labels: Sequence[str]) -> torch.Tensor:
    """Targets of single-label classification: each clip's one label as an index into ``labels``."""
    index = {label: i for i, label in enumerate(labels)}
    if any(len(clip) != 1 for clip in label_sets):
        raise DataError("clips with several labels need a multi-label task's targets, not class indices")
    return torch.tensor([index[clip[0]] for clip in label_sets], dtype=torch.long)


@dataclass(frozen=True)
class WaveformSet:
    """Waveforms of equal length (N, samples) and their targets (as the task encodes them: class
    indices (N,) for single-label classification, (N, classes) 0/1 for multi-label)."""

    waveforms: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return int(self.targets.shape[0])


def read_waveform(path: str | os.PathLike[str], *, sample_rate: int, clip_samples: int) -> torch.Tensor:
    """Decode one file to mono float32 at ``sample_rate``, centre-cropped or centre-padded."""
    return fit_length(read_recording(path, sample_rate=sample_rate), clip_samples)


def read_recording(path: str | os.PathLike[str], *, sample_rate: int) -> torch.Tensor:
    """Decode one file of any length to mono float32 at ``sample_rate``; DataError (one line) if
    it cannot be read, is empty or holds NaN."""
    try:
        data, file_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, OSError) as exc:
        raise DataError(
            f"{path}: cannot read audio ({_short(exc)}); replace the file or remove it from the data"
        ) from None
    if data.shape[0] == 0:
        raise DataError(f"{path}: the audio file is empty; replace the file or remove it from the data")
    if not np.isfinite(data).all():
        raise DataError(f"{path}: audio holds NaN or infinite samples; re-export the file")
    wave = torch.from_numpy(data.mean(axis=1))
    if file_rate != sample_rate:
        wave = AF.resample(wave, orig_freq=int(file_rate), new_freq=sample_rate)
    return wave


def fit_length(wave: torch.Tensor, samples: int) -> torch.Tensor:
    """Centre-crop or zero-pad (equally on both sides) a 1-D waveform to ``samples``."""
    extra = wave.shape[0] - samples
    if extra > 0:
        start = extra // 2
        return wave[start : start + samples].contiguous()
    if extra < 0:
        left = -extra // 2
        return torch.nn.functional.pad(wave, (left, -extra - left))
    return wave


def load_waveforms(
    clips: Sequence[Clip],
    labels: Sequence[str],
    *,
    sample_rate: int,
    clip_samples: int,
    encode: Encode = class_indices,
    progress: Callable[[], None] | None = None,
) -> WaveformSet:
    """Read ``clips`` into one tensor, their labels encoded by ``encode`` (the task's).
    ``progress`` is an optional callable advanced once per file."""
    known = set(labels)
    waves = torch.empty(len(clips), clip_samples)
    for row, clip in enumerate(clips):
        foreign = [label for label in clip.labels if label not in known]
        if foreign:
            raise DataError(f"{clip.path}: label {foreign[0]!r} is not one of the model's classes")
        waves[row] = read_waveform(clip.path, sample_rate=sample_rate, clip_samples=clip_samples)
        if progress is not None:
            progress()
    return WaveformSet(waves, encode([clip.labels for clip in clips], labels))


def _short(exc: BaseException) -> str:
    """The reason alone: libsndfile prefixes it with "Error opening '<path>': "."""
    lines = str(exc).strip().splitlines()
    text = lines[-1] if lines else type(exc).__name__
    return text.split("': ", 1)[1] if text.startswith("Error opening '") and "': " in text else text


@dataclass(frozen=True)
class SplitSets:
    train: WaveformSet
    validation: WaveformSet
    test: WaveformSet

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The sets as numpy arrays, for Ray's object store: it shares numpy arrays between the
        processes of a node without a copy (torch tensors it would copy into each process)."""
        return {
            f"{part}.{field}": getattr(getattr(self, part), field).numpy()
            for part in _PARTS
            for field in ("waveforms", "targets")
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> SplitSets:
        """The inverse of ``to_arrays``, without a copy: tensors over an object store's read-only
        memory stay read-only (nothing here writes into its data)."""
        with warnings.catch_warnings():  # torch warns that it cannot mark a tensor read-only
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            tensors = {name: torch.from_numpy(array) for name, array in arrays.items()}
        return cls(
            *(WaveformSet(tensors[f"{part}.waveforms"], tensors[f"{part}.targets"]) for part in _PARTS)
        )


_PARTS = ("train", "validation", "test")


def load_splits(
    splits: Splits,
    labels: Sequence[str],
    front_end: FrontEndConfig,
    *,
    encode: Encode = class_indices,
    progress: Progress | None = None,
) -> SplitSets:
    """Read the three parts of ``splits``, showing one progress bar over all files."""
    task = None
    if progress is not None:
        total = sum(splits.sizes().values())
        task = progress.add_task("reading audio", total=total)

    def advance() -> None:
        if progress is not None:
            progress.advance(task)

    sets = [
        load_waveforms(
            part,
            labels,
            sample_rate=front_end.sample_rate,
            clip_samples=front_end.clip_samples,
            encode=encode,
            progress=advance,
        )
        for part in (splits.train, splits.validation, splits.test)
    ]
    return SplitSets(*sets)
