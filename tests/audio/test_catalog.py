from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from paretone.audio import load_waveforms, open_dataset
from paretone.errors import DataError
from tests.helpers import write_tone


def test_fsdd_layout_is_detected_with_speakers_and_indices(fsdd_catalog):
    assert fsdd_catalog.layout == "fsdd"
    assert len(fsdd_catalog.clips) == 3000
    assert fsdd_catalog.labels == tuple(str(d) for d in range(10))
    assert fsdd_catalog.speakers == ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
    clip = next(c for c in fsdd_catalog.clips if c.path.name == "7_jackson_32.wav")
    assert (clip.label, clip.speaker, clip.index) == ("7", "jackson", 32)


def test_manifest_layout_resolves_relative_paths_and_folds(tmp_path, fsdd):
    rows = ["path,label,fold"]
    for fold, name in enumerate(
        ["0_george_1", "1_george_1", "0_theo_2", "1_theo_2", "0_lucas_3", "1_lucas_3"]
    ):
        dst = tmp_path / "audio" / f"{name}.wav"
        dst.parent.mkdir(exist_ok=True)
        shutil.copy(fsdd / "recordings" / f"{name}.wav", dst)
        rows.append(f"audio/{name}.wav,{'zero' if name[0] == '0' else 'one'},{fold // 2 + 1}")
    manifest = tmp_path / "meta.csv"
    manifest.write_text("\n".join(rows) + "\n")
    catalog = open_dataset(manifest)
    assert catalog.layout == "manifest"
    assert catalog.labels == ("one", "zero")
    assert sorted(c.fold for c in catalog.clips) == [1, 1, 2, 2, 3, 3]
    assert all(c.path.is_file() for c in catalog.clips)


def test_class_folders_layout(tmp_path):
    for label in ("yes", "no"):
        for i in range(3):
            write_tone(tmp_path / label / f"{i}.wav", freq=300 + 100 * i)
    catalog = open_dataset(tmp_path)
    assert catalog.layout == "folders"
    assert catalog.labels == ("no", "yes")
    assert len(catalog.clips) == 6


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda root: root / "missing", "no such file or folder"),
        (lambda root: root, "no audio found"),
        (lambda root: (root / "notes.txt").write_text("x") and root / "notes.txt", "not a .csv"),
    ],
)
def test_missing_or_empty_data_is_refused(tmp_path, setup, message):
    with pytest.raises(DataError, match=message):
        open_dataset(setup(tmp_path))


def test_manifest_row_pointing_nowhere_names_the_line(tmp_path):
    write_tone(tmp_path / "a.wav")
    (tmp_path / "m.csv").write_text("path,label\na.wav,x\nb.wav,y\n")
    with pytest.raises(DataError, match=r"m\.csv:3: .*b\.wav does not exist"):
        open_dataset(tmp_path / "m.csv")


def test_manifest_without_label_column_is_refused(tmp_path):
    (tmp_path / "m.csv").write_text("file,class\na.wav,x\n")
    with pytest.raises(DataError, match="lacks column"):
        open_dataset(tmp_path / "m.csv")


def test_class_folder_without_audio_is_refused(tmp_path):
    write_tone(tmp_path / "yes" / "0.wav")
    (tmp_path / "no").mkdir()
    with pytest.raises(DataError, match=r"no: class folder holds no audio"):
        open_dataset(tmp_path)


def test_single_class_is_refused(tmp_path):
    write_tone(tmp_path / "yes" / "0.wav")
    with pytest.raises(DataError, match="only one class"):
        open_dataset(tmp_path)


@pytest.mark.parametrize("content", [b"", b"this is not audio at all" * 10, b"RIFF\x00\x00"])
def test_unreadable_audio_names_the_file(tmp_path, content):
    write_tone(tmp_path / "yes" / "good.wav")
    bad = tmp_path / "no" / "bad.wav"
    bad.parent.mkdir()
    bad.write_bytes(content)
    catalog = open_dataset(tmp_path)
    with pytest.raises(DataError, match=r"bad\.wav: cannot read audio"):
        load_waveforms(catalog.clips, catalog.labels, sample_rate=8000, clip_samples=8000)


def test_fsdd_file_with_foreign_name_is_refused(tmp_path, fsdd):
    shutil.copy(fsdd / "recordings" / "0_george_0.wav", tmp_path / "0_george_0.wav")
    write_tone(tmp_path / "hello.wav")
    with pytest.raises(DataError, match=r"hello\.wav: name does not follow"):
        open_dataset(tmp_path, layout="fsdd")


def test_default_location_comes_from_environment(monkeypatch, fsdd):
    monkeypatch.setenv("PARETONE_DATA", str(fsdd))
    assert open_dataset(None).root == Path(fsdd)


def _multilabel_manifest(tmp_path: Path, rows: list[str], header: str = "path,labels,fold,speaker") -> Path:
    for i in range(4):
        write_tone(tmp_path / f"clip{i}.wav", freq=300 + 50 * i)
    manifest = tmp_path / "mix.csv"
    manifest.write_text("\n".join([header, *rows]) + "\n")
    return manifest


def test_a_labels_column_makes_a_multilabel_catalog_with_speakers(tmp_path):
    manifest = _multilabel_manifest(
        tmp_path,
        [
            "clip0.wav,dog;siren,1,ann",
            "clip1.wav,siren,2,bob",
            "clip2.wav, speech ; dog ,3,cy",
            "clip3.wav,dog,3,",
        ],
    )
    catalog = open_dataset(manifest)
    assert catalog.multilabel and catalog.labels == ("dog", "siren", "speech")
    by_name = {c.path.name: c for c in catalog.clips}
    assert by_name["clip0.wav"].labels == ("dog", "siren") and by_name["clip0.wav"].speaker == "ann"
    assert by_name["clip2.wav"].labels == ("dog", "speech") and by_name["clip3.wav"].speaker is None
    assert catalog.speakers == ("ann", "bob", "cy")
    assert not open_dataset(_write_single(tmp_path)).multilabel


def _write_single(tmp_path: Path) -> Path:
    path = tmp_path / "single.csv"
    path.write_text("path,label\nclip0.wav,dog\nclip1.wav,cat\n")
    return path


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        (["clip0.wav,dog;;siren"], "path,labels", "empty label in 'dog;;siren'"),
        (["clip0.wav,dog", "clip1.wav,"], "path,labels", r"mix.csv:3: the row has no label"),
        (["clip0.wav,dog,dog"], "path,label,labels", "both a label and a labels column"),
    ],
)
def test_bad_multilabel_rows_are_refused_with_their_line(tmp_path, rows, header, message):
    with pytest.raises(DataError, match=message):
        open_dataset(_multilabel_manifest(tmp_path, rows, header))
