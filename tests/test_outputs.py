"""Output folders: paretone replaces only what it wrote, and refuses before any work."""

from __future__ import annotations

import json

import pytest

from paretone._outputs import OWNER_FILE, OutputFolder
from paretone.errors import ConfigError


def test_a_new_folder_records_what_the_command_writes(tmp_path):
    folder = OutputFolder.claim(tmp_path / "out", command="train", entries=("a.json", "cache"))
    assert not (tmp_path / "out").exists()  # claiming writes nothing
    folder.begin()
    marker = json.loads((tmp_path / "out" / OWNER_FILE).read_text())
    assert marker["command"] == "train" and marker["entries"] == ["a.json", "cache"]
    folder.own("extra")
    assert "extra" in json.loads((tmp_path / "out" / OWNER_FILE).read_text())["entries"]


def test_an_existing_folder_needs_overwrite_and_then_only_paretones_files_go(tmp_path):
    first = OutputFolder.claim(tmp_path, command="pick", entries=("model.onnx", "student"))
    first.begin()
    (tmp_path / "model.onnx").write_text("old")
    (tmp_path / "student").mkdir()
    (tmp_path / "notes.txt").write_text("the user's")
    with pytest.raises(ConfigError, match=r"already holds 3 entries .*--overwrite"):
        OutputFolder.claim(tmp_path, command="pick", entries=("model.onnx", "student"))
    again = OutputFolder.claim(tmp_path, command="pick", entries=("model.onnx", "student"), overwrite=True)
    again.remove("student")
    again.remove("notes.txt")  # not paretone's: never removed
    assert not (tmp_path / "student").exists() and (tmp_path / "notes.txt").read_text() == "the user's"


def test_a_file_of_the_users_with_a_name_paretone_would_write_is_never_replaced(tmp_path):
    (tmp_path / "model.onnx").write_text("the user's own model")
    with pytest.raises(ConfigError, match=r"model\.onnx was not written by paretone"):
        OutputFolder.claim(tmp_path, command="pick", entries=("model.onnx",), overwrite=True)
    with pytest.raises(ConfigError, match=r"model\.onnx was not written by paretone"):
        OutputFolder.claim(tmp_path, command="pareto", entries=("model.onnx",), replace_own=True)


def test_inputs_files_and_a_broken_marker_are_refused_or_trusted_with_nothing(tmp_path):
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    with pytest.raises(ConfigError, match="inside the input folder"):
        OutputFolder.claim(teacher / "sub", command="compress", entries=(), inputs=(teacher,))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        OutputFolder.claim(tmp_path / "file", command="train", entries=())
    (teacher / OWNER_FILE).write_text("{corrupt")
    (teacher / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="was not written by paretone"):
        OutputFolder.claim(teacher, command="train", entries=("config.json",), overwrite=True)
