"""Train / validation / test splits. Searches tune on validation; test is only for final reports.

Split names (``make_splits(catalog, split)``):
- ``default``: ``official`` for FSDD, ``fold:<last>`` for a manifest with folds, the Speech
  Commands lists where present, else ``hash``.
- ``official`` (FSDD): take index 0-4 is test (the published split), 5-9 validation, the rest
  train. Speaker-dependent: every speaker appears in all three.
- ``speaker:NAME`` (FSDD, or a manifest with a ``speaker`` column): NAME's clips are test, the
  next speaker in sorted order is validation, the rest train, so both evaluation sets are voices
  the model never heard. ``speaker:NAME:K``: the next K speakers are validation, so a search's
  validation metric averages over K new voices instead of resting on one (fewer voices to train on).
- ``fold:K`` (manifest): fold K is test, the previous fold (cyclically) validation.
- ``hash``: a stable hash of each file's relative path, 80/10/10; independent of file order.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from paretone.audio._catalog import Catalog, Clip
from paretone.errors import DataError


@dataclass(frozen=True)
class Splits:
    name: str
    train: tuple[Clip, ...]
    validation: tuple[Clip, ...]
    test: tuple[Clip, ...]

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}


def make_splits(catalog: Catalog, split: str = "default") -> Splits:
    """Partition ``catalog`` into disjoint train, validation and test sets."""
    name = _resolve_default(catalog) if split == "default" else split
    if name == "official":
        parts = _fsdd_official(catalog)
    elif name.startswith("speaker:"):
        speaker, _, count = name.removeprefix("speaker:").partition(":")
        parts = _by_speaker(catalog, speaker, _validation_speakers(count, name))
    elif name.startswith("fold:"):
        parts = _by_fold(catalog, name.removeprefix("fold:"))
    elif name == "hash":
        parts = _by_hash(catalog)
    elif name == "speech-commands":
        parts = _speech_commands(catalog)
    else:
        raise DataError(f"unknown split {split!r}: use default, official, speaker:NAME[:K], fold:K or hash")
    splits = Splits(name, *(tuple(p) for p in parts))
    _check(catalog, splits)
    return splits


def _resolve_default(catalog: Catalog) -> str:
    if catalog.layout == "fsdd":
        return "official"
    folds = sorted({c.fold for c in catalog.clips if c.fold is not None})
    if folds:
        return f"fold:{folds[-1]}"
    if (catalog.root / "testing_list.txt").is_file():
        return "speech-commands"
    return "hash"


def _require_fsdd(catalog: Catalog, split: str) -> None:
    if catalog.layout != "fsdd":
        raise DataError(f"split {split!r} needs the FSDD layout; this dataset is {catalog.layout!r}")


def _fsdd_official(catalog: Catalog) -> list[list[Clip]]:
    _require_fsdd(catalog, "official")
    parts: list[list[Clip]] = [[], [], []]
    for clip in catalog.clips:
        assert clip.index is not None
        parts[0 if clip.index >= 10 else 1 if clip.index >= 5 else 2].append(clip)
    return parts


def _validation_speakers(text: str, split: str) -> int:
    if not text:
        return 1
    if not text.isdigit() or int(text) < 1:
        raise DataError(f"split {split!r}: the validation speaker count must be a whole number >= 1")
    return int(text)


def _by_speaker(catalog: Catalog, speaker: str, validation_count: int = 1) -> list[list[Clip]]:
    speakers = list(catalog.speakers)
    if not speakers:
        raise DataError(
            f"split 'speaker:{speaker}' needs speakers: the FSDD layout or a manifest speaker column"
        )
    if speaker not in speakers:
        raise DataError(f"speaker {speaker!r} not in the dataset; choose one of {', '.join(speakers)}")
    if len(speakers) < 2 + validation_count:
        raise DataError(
            f"split 'speaker:{speaker}' with {validation_count} validation speaker(s) needs at least "
            f"{2 + validation_count} speakers (train, validation, test); this dataset has {len(speakers)}"
        )
    at = speakers.index(speaker)
    validation = {speakers[(at + k) % len(speakers)] for k in range(1, validation_count + 1)}
    return [
        [c for c in catalog.clips if c.speaker != speaker and c.speaker not in validation],
        [c for c in catalog.clips if c.speaker in validation],
        [c for c in catalog.clips if c.speaker == speaker],
    ]


def _by_fold(catalog: Catalog, fold_text: str) -> list[list[Clip]]:
    folds = sorted({c.fold for c in catalog.clips if c.fold is not None})
    if not folds:
        raise DataError(f"{catalog.root}: split 'fold:{fold_text}' needs a 'fold' column")
    if any(c.fold is None for c in catalog.clips):
        raise DataError(f"{catalog.root}: some rows have no fold; fill in every fold or drop the column")
    try:
        fold = int(fold_text)
    except ValueError:
        raise DataError(f"fold {fold_text!r} is not a whole number") from None
    if fold not in folds or len(folds) < 3:
        raise DataError(f"fold {fold} not usable: the manifest has folds {folds} (need 3 or more)")
    validation = folds[folds.index(fold) - 1]
    return [
        [c for c in catalog.clips if c.fold not in (fold, validation)],
        [c for c in catalog.clips if c.fold == validation],
        [c for c in catalog.clips if c.fold == fold],
    ]


def _relative(catalog: Catalog, clip: Clip) -> str:
    base = catalog.root if catalog.root.is_dir() else catalog.root.parent
    try:
        return clip.path.relative_to(base).as_posix()
    except ValueError:
        return clip.path.as_posix()


def _by_hash(catalog: Catalog) -> list[list[Clip]]:
    parts: list[list[Clip]] = [[], [], []]
    for clip in catalog.clips:
        bucket = int(hashlib.sha1(_relative(catalog, clip).encode()).hexdigest(), 16) % 10
        parts[0 if bucket < 8 else 1 if bucket == 8 else 2].append(clip)
    return parts


def _speech_commands(catalog: Catalog) -> list[list[Clip]]:
    def listed(name: str) -> set[str]:
        path = Path(catalog.root) / name
        if not path.is_file():
            raise DataError(f"{path}: missing; the speech-commands split needs it")
        return {line.strip() for line in path.read_text().splitlines() if line.strip()}

    test, validation = listed("testing_list.txt"), listed("validation_list.txt")
    parts: list[list[Clip]] = [[], [], []]
    for clip in catalog.clips:
        rel = _relative(catalog, clip)
        parts[2 if rel in test else 1 if rel in validation else 0].append(clip)
    return parts


def _check(catalog: Catalog, splits: Splits) -> None:
    for part in ("train", "validation", "test"):
        if not getattr(splits, part):
            raise DataError(f"split {splits.name!r} leaves the {part} set empty; choose another split")
    counts = Counter(label for c in splits.train for label in c.labels)
    empty = [label for label in catalog.labels if counts[label] == 0]
    if empty:
        tested = {label for c in splits.test for label in c.labels}
        where = " (they appear in the test set only)" if set(empty) <= tested else ""
        raise DataError(
            f"split {splits.name!r}: class(es) {', '.join(empty)} have no positive training clip"
            f"{where}; add recordings or choose another split"
        )
