"""Strong labels: sound events with onset and offset, as DCASE and sed_eval write them in CSV."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass

from paretone.errors import DataError

EVENT_COLUMNS = ("onset", "offset", "event_label")


@dataclass(frozen=True)
class Event:
    onset_s: float
    offset_s: float
    label: str

    def to_dict(self) -> dict[str, float | str]:
        return {"label": self.label, "onset_s": round(self.onset_s, 3), "offset_s": round(self.offset_s, 3)}


def read_events(path: str | os.PathLike[str]) -> list[Event]:
    """Strong labels from a CSV with onset, offset and event_label columns (``paretone data mix``)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
        return [Event(float(r["onset"]), float(r["offset"]), str(r["event_label"])) for r in rows]
    except (OSError, KeyError, ValueError, csv.Error) as exc:
        columns = ",".join(EVENT_COLUMNS)
        raise DataError(f"{path}: cannot read strong labels ({exc}); columns {columns}") from None


def write_events(path: str | os.PathLike[str], events: Sequence[Event]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(EVENT_COLUMNS)
        writer.writerows([e.onset_s, e.offset_s, e.label] for e in events)
