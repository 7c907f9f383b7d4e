from __future__ import annotations

from collections import Counter

import pytest

from paretone.audio import make_splits, open_dataset
from paretone.errors import DataError
from tests.helpers import write_tone


def _paths(clips):
    return {c.path for c in clips}


def _assert_disjoint_cover(catalog, splits):
    train, val, test = _paths(splits.train), _paths(splits.validation), _paths(splits.test)
    assert not (train & val or train & test or val & test)
    assert train | val | test == _paths(catalog.clips)


def test_official_split_is_the_published_one(fsdd_catalog):
    splits = make_splits(fsdd_catalog, "default")
    assert splits.name == "official"
    assert splits.sizes() == {"train": 2400, "validation": 300, "test": 300}
    assert {c.index for c in splits.test} == set(range(5))
    assert {c.index for c in splits.validation} == set(range(5, 10))
    _assert_disjoint_cover(fsdd_catalog, splits)


@pytest.mark.parametrize("speaker", ["nicolas", "yweweler"])
def test_speaker_split_holds_out_whole_voices(fsdd_catalog, speaker):
    splits = make_splits(fsdd_catalog, f"speaker:{speaker}")
    test_speakers = {c.speaker for c in splits.test}
    val_speakers = {c.speaker for c in splits.validation}
    train_speakers = {c.speaker for c in splits.train}
    assert test_speakers == {speaker}
    assert len(val_speakers) == 1 and val_speakers != test_speakers
    assert not train_speakers & (test_speakers | val_speakers)
    assert len(train_speakers) == 4
    _assert_disjoint_cover(fsdd_catalog, splits)


def test_speaker_split_with_several_validation_voices_takes_the_next_ones(fsdd_catalog):
    splits = make_splits(
        fsdd_catalog, "speaker:yweweler:2"
    )  # sorted: george jackson lucas nicolas theo yweweler
    assert {c.speaker for c in splits.test} == {"yweweler"}
    assert {c.speaker for c in splits.validation} == {"george", "jackson"}  # wraps around
    assert {c.speaker for c in splits.train} == {"lucas", "nicolas", "theo"}
    assert splits.sizes() == {"train": 1500, "validation": 1000, "test": 500}
    _assert_disjoint_cover(fsdd_catalog, splits)


def test_hash_split_is_stable_and_roughly_80_10_10(fsdd_catalog):
    first, second = make_splits(fsdd_catalog, "hash"), make_splits(fsdd_catalog, "hash")
    assert _paths(first.test) == _paths(second.test)
    sizes = first.sizes()
    assert 2250 < sizes["train"] < 2550 and 200 < sizes["test"] < 400
    _assert_disjoint_cover(fsdd_catalog, first)


def test_fold_split_uses_last_fold_for_test_by_default(tmp_path):
    rows = ["path,label,fold"]
    for fold in (1, 2, 3, 4):
        for label in ("a", "b"):
            write_tone(tmp_path / f"{label}{fold}.wav")
            rows.append(f"{label}{fold}.wav,{label},{fold}")
    (tmp_path / "m.csv").write_text("\n".join(rows))
    catalog = open_dataset(tmp_path / "m.csv")
    splits = make_splits(catalog)
    assert splits.name == "fold:4"
    assert {c.fold for c in splits.test} == {4} and {c.fold for c in splits.validation} == {3}
    assert make_splits(catalog, "fold:1").validation[0].fold == 4  # cyclic


def test_class_missing_from_training_is_refused(tmp_path):
    rows = ["path,label,fold", "a1.wav,a,1", "a2.wav,a,2", "a3.wav,a,3", "b3.wav,b,3"]
    for row in rows[1:]:
        write_tone(tmp_path / row.split(",")[0])
    (tmp_path / "m.csv").write_text("\n".join(rows))
    with pytest.raises(DataError, match=r"class\(es\) b have no positive training clip"):
        make_splits(open_dataset(tmp_path / "m.csv"), "fold:3")


@pytest.mark.parametrize(
    ("split", "message"),
    [
        ("speaker:bob", "not in the dataset"),
        ("speaker:nicolas:0", "validation speaker count must be a whole number >= 1"),
        ("speaker:nicolas:x", "validation speaker count must be a whole number >= 1"),
        ("speaker:nicolas:5", "needs at least 7 speakers"),
        ("fold:1", "needs a 'fold' column"),
        ("magic", "unknown split"),
    ],
)
def test_bad_split_names_are_refused(fsdd_catalog, split, message):
    with pytest.raises(DataError, match=message):
        make_splits(fsdd_catalog, split)


def test_official_split_is_balanced_over_classes(fsdd_catalog):
    counts = Counter(c.label for c in make_splits(fsdd_catalog, "official").test)
    assert set(counts.values()) == {30}


def test_a_label_seen_only_in_the_test_set_is_refused(tmp_path):

    rows = ["path,labels,fold"]
    for i, (labels, fold) in enumerate([("a", 1), ("b", 1), ("a;b", 2), ("a", 3), ("b;c", 3)]):
        write_tone(tmp_path / f"{i}.wav", freq=300 + 40 * i)
        rows.append(f"{i}.wav,{labels},{fold}")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    catalog = open_dataset(tmp_path / "m.csv")
    with pytest.raises(DataError, match=r"c have no positive training clip \(they appear in the test"):
        make_splits(catalog, "fold:3")


def test_speaker_split_of_a_manifest_uses_its_speaker_column(tmp_path):

    rows = ["path,labels,speaker"]
    for i in range(12):
        write_tone(tmp_path / f"{i}.wav", freq=300 + 40 * i)
        rows.append(f"{i}.wav,{'a' if i % 2 else 'a;b'},{'spk' + str(i % 4)}")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    splits = make_splits(open_dataset(tmp_path / "m.csv"), "speaker:spk2")
    assert {c.speaker for c in splits.test} == {"spk2"} and {c.speaker for c in splits.validation} == {"spk3"}
    assert {c.speaker for c in splits.train} == {"spk0", "spk1"}
