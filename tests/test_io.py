from __future__ import annotations

import json

import pytest

from paretone._io import write_atomic, write_json


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "metrics.json"
    write_json(target, {"v": 1})

    def crash(tmp):
        tmp.write_text('{"v": 2, "torn')
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        write_atomic(target, crash)
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_write_json_creates_parent_folders(tmp_path):
    write_json(tmp_path / "a" / "b.json", [1, 2])
    assert json.loads((tmp_path / "a" / "b.json").read_text()) == [1, 2]
