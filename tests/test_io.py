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


def test_json_reads_are_bounded_in_depth_and_size(tmp_path):
    from paretone._io import read_json
    from paretone.errors import ConfigError

    deep = tmp_path / "deep.json"
    deep.write_text("[" * 40 + "]" * 40)
    with pytest.raises(ConfigError, match="nested deeper than 32 levels; fix it"):
        read_json(deep, missing="", fix="fix it")
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError, match="nested too deeply"):
        read_json(deep, missing="", fix="fix it")
    big = tmp_path / "big.json"
    big.write_text("[" + "0," * 600 + "0]")
    with pytest.raises(ConfigError, match="too large"):
        read_json(big, missing="", fix="fix it", max_bytes=1000)
    with pytest.raises(ConfigError, match="no such file; make one"):
        read_json(tmp_path / "absent.json", missing="make one", fix="")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_json(tmp_path / "bin.json", missing="", fix="")


def test_a_writer_that_recreates_the_file_still_gets_an_ordinary_mode(tmp_path):
    import os

    def recreate(tmp):
        tmp.unlink()
        os.close(os.open(tmp, os.O_CREAT | os.O_WRONLY, 0o600))  # as safetensors writes its files

    write_atomic(tmp_path / "w.bin", recreate)
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "w.bin").stat().st_mode & 0o777 == 0o666 & ~umask
