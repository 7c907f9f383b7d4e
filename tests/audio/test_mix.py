"""`paretone data mix`: a seeded polyphonic set with strong labels that keeps the split's promises."""

from __future__ import annotations

import csv
import hashlib

import numpy as np
import soundfile

from paretone.audio import audio_format, make_splits, open_dataset
from paretone.audio._catalog import Clip
from paretone.audio._mix import MixSettings, active_span, fold_of, mix_dataset


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_set_is_multilabel_with_strong_labels_beside_each_clip(tiny_mixtures):
    catalog = open_dataset(tiny_mixtures / "mixtures.csv")
    assert catalog.multilabel and catalog.labels == tuple(str(d) for d in range(10))
    fmt = audio_format(catalog.clips)
    assert (fmt.sample_rate, fmt.clip_seconds, fmt.cut) == (8000, 2.0, 0)
    sizes = [len(c.labels) for c in catalog.clips]
    assert min(sizes) == 1 and max(sizes) == 3 and 1.5 < np.mean(sizes) < 2.5
    for clip in catalog.clips[:40]:
        events = _rows(clip.path.with_suffix(".events.csv"))
        assert {e["event_label"] for e in events} == set(clip.labels)
        for e in events:
            assert 0 <= float(e["onset"]) < float(e["offset"]) <= 2.0
    everything = _rows(tiny_mixtures / "events.csv")
    assert {"filename", "onset", "offset", "event_label"} <= set(everything[0])


def test_both_split_kinds_stay_disjoint(tiny_mixtures):
    catalog = open_dataset(tiny_mixtures / "mixtures.csv")
    default = make_splits(catalog)
    assert default.name == "fold:3"  # recordings 0-4 of every speaker, as FSDD's official test split
    assert {c.fold for c in default.test} == {3} and {c.fold for c in default.validation} == {2}
    held_out = make_splits(catalog, "speaker:nicolas")
    assert {c.speaker for c in held_out.test} == {"nicolas"}
    assert "nicolas" not in {c.speaker for c in held_out.train + held_out.validation}


def test_long_recordings_hold_minutes_of_labelled_events(tiny_mixtures):
    long = sorted((tiny_mixtures / "long").glob("*.wav"))
    assert len(long) == 6
    info = soundfile.info(str(long[0]))
    assert info.samplerate == 8000 and abs(info.duration - 12.0) < 0.01
    events = _rows(long[0].with_suffix(".events.csv"))
    onsets = [float(e["onset"]) for e in events]
    assert len(events) >= 5 and onsets == sorted(onsets) and float(events[-1]["offset"]) <= 12.0


def test_the_same_seed_gives_the_same_files(fsdd_catalog, tmp_path):
    def digest(root) -> str:
        h = hashlib.sha256()
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix in (".wav", ".csv"):
                h.update(path.read_bytes())
        return h.hexdigest()

    settings = MixSettings(clips=12, long_minutes=0.0, seed=7)
    mix_dataset(fsdd_catalog, tmp_path / "a", settings)
    mix_dataset(fsdd_catalog, tmp_path / "b", settings)
    mix_dataset(fsdd_catalog, tmp_path / "c", MixSettings(clips=12, long_minutes=0.0, seed=8))
    assert digest(tmp_path / "a") == digest(tmp_path / "b") != digest(tmp_path / "c")


def test_fsdd_indices_map_to_the_official_sides_and_events_start_at_the_voice():
    folds = [fold_of(Clip(path=None, labels=("1",), index=i)) for i in (0, 4, 5, 9, 10, 49)]
    assert folds == [3, 3, 2, 2, 1, 1]
    wave = np.zeros(8000, np.float32)
    wave[2000:3040] = np.sin(np.arange(1040) / 3)  # whole 10 ms frames
    start, stop = active_span(wave, 8000)
    assert (start, stop) == (2000, 3040)
