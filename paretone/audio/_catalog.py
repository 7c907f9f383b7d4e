"""Dataset catalogues: which audio files exist and what their labels are, read from three layouts.

- ``fsdd``: the Free Spoken Digit Dataset, files named ``{label}_{speaker}_{index}.wav``.
- ``manifest``: a CSV file with columns ``path,label[,fold][,speaker]`` (the ESC-50 convention),
  or ``path,labels[,fold][,speaker]`` for multi-label data (labels separated by ``;``, the
  ``labels`` column is what marks a dataset multi-label); relative paths are resolved against the
  CSV's folder.
- ``folders``: one sub-folder per class (the Speech Commands convention).

A catalogue holds paths and labels only; audio is read later (see ``load_waveforms``).
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

from paretone.errors import DataError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif")
LAYOUTS = ("auto", "fsdd", "manifest", "folders")
_FSDD_NAME = re.compile(r"^(?P<label>[^_]+)_(?P<speaker>[^_]+)_(?P<index>\d+)\.wav$")
FSDD_HINT = (
    "get FSDD with 'git clone https://github.com/Jakobovski/free-spoken-digit-dataset' and pass "
    "--data free-spoken-digit-dataset (or set PARETONE_DATA)"
)


@dataclass(frozen=True)
class Clip:
    """One labelled recording: one label for classification datasets, several for multi-label ones.
    ``speaker``, ``index`` and ``fold`` are known only for some layouts."""

    path: Path
    labels: tuple[str, ...]
    speaker: str | None = None
    index: int | None = None
    fold: int | None = None

    @property
    def label(self) -> str:
        """The clip's one label (DataError for a clip with several)."""
        if len(self.labels) != 1:
            raise DataError(f"{self.path}: has {len(self.labels)} labels where one is expected")
        return self.labels[0]


@dataclass(frozen=True)
class Catalog:
    """All clips of a dataset, with the sorted class names that fix the label order.
    ``multilabel``: clips may carry several labels (a manifest with a ``labels`` column)."""

    layout: str
    root: Path
    clips: tuple[Clip, ...]
    labels: tuple[str, ...]
    multilabel: bool = False

    @property
    def speakers(self) -> tuple[str, ...]:
        return tuple(sorted({c.speaker for c in self.clips if c.speaker is not None}))


def default_data_path() -> Path | None:
    """Where to look for data when the user names none: $PARETONE_DATA, then ../shared/data/fsdd."""
    env = os.environ.get("PARETONE_DATA")
    if env:
        return Path(env)
    repo_root = Path(__file__).resolve().parents[2]
    for candidate in (Path.cwd() / "../shared/data/fsdd", repo_root / "../shared/data/fsdd"):
        if candidate.is_dir():
            return candidate.resolve()
    return None


def open_dataset(path: str | os.PathLike[str] | None, layout: str = "auto") -> Catalog:
    """Read the catalogue at ``path`` (None: the default location) in the given layout."""
    if layout not in LAYOUTS:
        raise DataError(f"unknown data layout {layout!r}: choose one of {', '.join(LAYOUTS)}")
    if path is None:
        found = default_data_path()
        if found is None:
            raise DataError(f"no dataset found at ../shared/data/fsdd: {FSDD_HINT}")
        path = found
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"{root}: no such file or folder; pass --data with an existing path")
    if layout == "auto":
        layout = _detect_layout(root)
    if layout == "manifest":
        return _read_manifest(root)
    if layout == "fsdd":
        return _read_fsdd(root)
    return _read_folders(root)


def _detect_layout(root: Path) -> str:
    if root.is_file():
        if root.suffix.lower() == ".csv":
            return "manifest"
        raise DataError(f"{root}: a file that is not a .csv manifest; pass a folder or a CSV file")
    fsdd_dir = root / "recordings" if (root / "recordings").is_dir() else root
    if any(_FSDD_NAME.match(p.name) for p in fsdd_dir.glob("*.wav")):
        return "fsdd"
    if any(p.is_dir() for p in root.iterdir()):
        return "folders"
    raise DataError(
        f"{root}: no audio found; expected FSDD files ({{label}}_{{speaker}}_{{index}}.wav), "
        "a manifest CSV or one sub-folder per class"
    )


def _catalog(layout: str, root: Path, clips: list[Clip], *, multilabel: bool = False) -> Catalog:
    if not clips:
        raise DataError(f"{root}: the dataset holds no audio files; point --data at the audio")
    labels = tuple(sorted({label for c in clips for label in c.labels}))
    if len(labels) < 2:
        raise DataError(f"{root}: only one class ({labels[0]!r}) found; a classifier needs two or more")
    clips.sort(key=lambda c: str(c.path))
    return Catalog(layout=layout, root=root, clips=tuple(clips), labels=labels, multilabel=multilabel)


def _read_fsdd(root: Path) -> Catalog:
    folder = root / "recordings" if (root / "recordings").is_dir() else root
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder; the FSDD layout needs a folder of .wav files")
    clips = []
    for path in folder.iterdir():
        if path.suffix.lower() not in AUDIO_SUFFIXES:
            continue
        match = _FSDD_NAME.match(path.name)
        if match is None:
            raise DataError(
                f"{path}: name does not follow {{label}}_{{speaker}}_{{index}}.wav; "
                "rename or remove it, or use --layout folders/manifest"
            )
        clips.append(Clip(path, (match["label"],), speaker=match["speaker"], index=int(match["index"])))
    return _catalog("fsdd", root, clips)


def _read_manifest(csv_path: Path) -> Catalog:
    try:
        # utf-8-sig: spreadsheet programs save "CSV UTF-8" with a byte-order mark
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
            header = set(rows[0].keys()) if rows else set()
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{csv_path}: cannot read the manifest ({exc}); fix or re-export it") from None
    if {"label", "labels"} <= header:
        raise DataError(f"{csv_path}: has both a label and a labels column; keep one")
    column = "labels" if "labels" in header else "label"
    missing = {"path", column} - header
    if missing:
        raise DataError(
            f"{csv_path}: manifest lacks column(s) {', '.join(sorted(missing))}; the header must be "
            "path,label[,fold][,speaker] (or path,labels,... for multi-label data)"
        )
    clips, seen = [], {}
    for line, row in enumerate(rows, start=2):
        raw_path = (row.get("path") or "").strip()
        if not raw_path:
            raise DataError(f"{csv_path}:{line}: empty path; fill in or delete the row")
        labels = _row_labels(row.get(column) or "", multi=column == "labels", where=f"{csv_path}:{line}")
        audio = Path(raw_path) if Path(raw_path).is_absolute() else csv_path.parent / raw_path
        if audio.is_dir():
            raise DataError(f"{csv_path}:{line}: {audio} is a folder, not an audio file; name a file")
        if not audio.is_file():
            raise DataError(f"{csv_path}:{line}: {audio} does not exist; fix the path or delete the row")
        key = audio.resolve()
        if key in seen:  # in two folds or with two labels it would land in train and test at once
            raise DataError(
                f"{csv_path}: rows {seen[key]} and {line} both name {audio}; keep one row per file"
            )
        seen[key] = line
        fold = None
        if (row.get("fold") or "").strip():
            try:
                fold = int(row["fold"])
            except ValueError:
                raise DataError(
                    f"{csv_path}:{line}: fold {row['fold']!r} is not a whole number; fix the row"
                ) from None
        speaker = (row.get("speaker") or "").strip() or None
        clips.append(Clip(audio, labels, speaker=speaker, fold=fold))
    return _catalog("manifest", csv_path, clips, multilabel=column == "labels")


def _row_labels(text: str, *, multi: bool, where: str) -> tuple[str, ...]:
    if not text.strip():
        raise DataError(f"{where}: the row has no label; fill in its label(s) or delete the row")
    if not multi:
        return (text.strip(),)
    labels = [part.strip() for part in text.split(";")]
    if any(not label for label in labels):
        raise DataError(f"{where}: empty label in {text!r}; separate labels by single ';'")
    return tuple(sorted(set(labels)))


def _read_folders(root: Path) -> Catalog:
    clips = []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        files = [p for p in class_dir.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES]
        if not files:
            raise DataError(f"{class_dir}: class folder holds no audio files; add recordings or remove it")
        clips.extend(Clip(p, (class_dir.name,)) for p in files)
    return _catalog("folders", root, clips)
