"""Output folders that never lose what paretone did not write.

A command that writes into a folder first ``claim``s it: the folder must not be an input's own
folder, and a folder that already holds anything is refused unless the user says ``--overwrite``;
even then only entries paretone wrote there (listed in ``.paretone-output.json``) are replaced.
All of this is checked before any work starts; ``begin`` (right before the first write) creates
the folder and records, in advance, every entry the command will write, so a run killed half-way
still leaves a folder whose entries are known to be paretone's.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from paretone._io import read_json, write_json
from paretone._version import __version__
from paretone.errors import ConfigError

OWNER_FILE = ".paretone-output.json"
OWNER_FORMAT = "paretone.output/1"


def owned_entries(folder: Path) -> set[str]:
    """Names of the entries of ``folder`` that paretone wrote (empty if it never wrote there)."""
    marker = folder / OWNER_FILE
    if not marker.is_file():
        return set()
    try:
        data = read_json(marker, missing="", fix="")
    except ConfigError:
        return set()  # unreadable: nothing counts as ours, so nothing is replaced
    if not isinstance(data, dict) or data.get("format") != OWNER_FORMAT:
        return set()
    return {str(name) for name in data.get("entries", []) if isinstance(name, str)}


def _inside(path: Path, other: Path) -> bool:
    return path == other or other in path.parents


@dataclass
class OutputFolder:
    """A claimed output folder; ``entries`` are the names the command writes directly inside it."""

    path: Path
    command: str
    entries: tuple[str, ...]
    _owned: set[str] = field(default_factory=set)
    _begun: bool = False

    @classmethod
    def claim(
        cls,
        path: str | os.PathLike[str],
        *,
        command: str,
        entries: Iterable[str],
        overwrite: bool = False,
        inputs: Sequence[str | os.PathLike[str]] = (),
        replace_own: bool = False,
        option: str = "--out",
    ) -> OutputFolder:
        """Check that ``command`` may write ``entries`` into ``path``; ConfigError (one line) if not.

        ``replace_own``: the entries are derived reports that the command may regenerate without
        ``--overwrite`` (they are still never written over a file paretone did not write).
        """
        folder = Path(path)
        entries = tuple(entries)
        resolved = folder.resolve()
        for source in inputs:
            if _inside(resolved, Path(source).resolve()):
                raise ConfigError(
                    f"{option} {folder} is inside the input folder {source}; writing there would "
                    f"replace or mix with the input: choose another {option}"
                )
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"{option} {folder} is a file, not a folder; choose another {option}")
        owned = owned_entries(folder) if folder.is_dir() else set()
        present = {p.name for p in folder.iterdir()} - {OWNER_FILE} if folder.is_dir() else set()
        if present and not (overwrite or replace_own):
            shown = ", ".join(sorted(present)[:3]) + (" ..." if len(present) > 3 else "")
            raise ConfigError(
                f"{option} {folder} already holds {len(present)} entries ({shown}); pass --overwrite to "
                "replace the files paretone wrote there (nothing else is touched), or choose another "
                f"{option}"
            )
        foreign = sorted((present - owned) & set(entries))
        if foreign:
            raise ConfigError(
                f"{folder / foreign[0]} was not written by paretone and would be replaced; move it away "
                f"or choose another {option}"
            )
        return cls(folder, command, entries, owned)

    def begin(self) -> Path:
        """Create the folder and record the entries this command writes; idempotent."""
        if not self._begun:
            self.path.mkdir(parents=True, exist_ok=True)
            self._owned |= set(self.entries)
            self._write_marker()
            self._begun = True
        return self.path

    def own(self, *names: str) -> None:
        """Record further entries written inside the folder (e.g. one per candidate tried)."""
        self.begin()
        if set(names) - self._owned:
            self._owned |= set(names)
            self._write_marker()

    def remove(self, name: str) -> None:
        """Delete an entry, only if paretone wrote it (never anything the user put there)."""
        target = self.path / name
        if name not in self._owned or not (target.exists() or target.is_symlink()):
            return
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()

    def _write_marker(self) -> None:
        write_json(
            self.path / OWNER_FILE,
            {
                "format": OWNER_FORMAT,
                "paretone_version": __version__,
                "command": self.command,
                "entries": sorted(self._owned),
            },
        )
