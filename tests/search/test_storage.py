"""Storage URLs are checked before anything starts, and a broken one is one line."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import optuna
import pytest

from paretone.api import study_storage
from paretone.errors import ConfigError
from paretone.search import check_storage, default_storage, make_storage, study_folder


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("sqlite:///:memory:", "in memory"),
        ("sqlite://", "in memory or names no file"),
        ("", "empty"),
        ("redis://localhost/0", "unsupported; use sqlite:///"),
        ("ftp://x/y", "unsupported"),
        ("journal:", "names no file"),
        ("postgresql://nobody@127.0.0.1:9/none", "cannot be opened"),
    ],
)
def test_unusable_urls_are_refused_in_one_line(url, needle):
    with pytest.raises(ConfigError, match=needle):
        check_storage(url)


def test_files_that_are_not_studies_are_named_as_such(tmp_path):
    garbage = tmp_path / "study.db"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConfigError, match="is not a SQLite database"):
        check_storage(f"sqlite:///{garbage}")
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("create table x (y)")
    truncated = tmp_path / "truncated.db"
    make_storage(f"sqlite:///{truncated}")  # a real Optuna database...
    truncated.write_bytes(truncated.read_bytes()[:3000])  # ...cut short
    with pytest.raises(ConfigError, match="cannot be opened"):
        check_storage(f"sqlite:///{truncated}")
    journal = tmp_path / "j.log"
    journal.write_text("{not json\nnor this\n")  # (a torn last line alone is a write cut short)
    with pytest.raises(ConfigError, match="not a readable Optuna journal"):
        check_storage(f"journal:{journal}")
    with pytest.raises(ConfigError, match="is a folder"):
        check_storage(f"sqlite:///{tmp_path}")


def test_checking_writes_nothing_and_an_unwritable_folder_is_refused(tmp_path):
    check_storage(f"sqlite:///{tmp_path / 'new' / 'study.db'}")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="cannot be created"):
        check_storage(f"sqlite:///{tmp_path / 'file' / 'study.db'}")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        import os

        if os.geteuid() != 0:  # root writes anywhere
            with pytest.raises(ConfigError, match="not writable"):
                check_storage(f"sqlite:///{locked / 'study.db'}")
    finally:
        locked.chmod(0o700)


def test_default_storage_is_a_journal_and_an_earlier_sqlite_study_keeps_its_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = default_storage("kws")
    assert url == "journal:runs/kws/study.log"
    with pytest.raises(ConfigError, match="does not exist; pass --storage"):
        study_storage("kws", None)  # nothing searched yet
    optuna.create_study(study_name="kws", storage=make_storage(url)).enqueue_trial({"x": 1.0})
    assert (tmp_path / "runs" / "kws" / "study.log").is_file() and study_storage("kws", None) == url
    assert len(optuna.load_study(study_name="kws", storage=make_storage(url)).trials) == 1
    old = tmp_path / "runs" / "old" / "study.db"
    old.parent.mkdir(parents=True)
    optuna.create_study(study_name="old", storage=f"sqlite:///{old}")
    assert default_storage("old") == f"sqlite:///{old.relative_to(tmp_path)}" == study_storage("old", None)


def test_a_study_folder_is_its_storage_file_s_folder_whatever_the_url_form():
    for url in ("journal:runs/a/study.log", "runs/a/study.log", "sqlite:///runs/a/study.db"):
        assert study_folder(url) == Path("runs/a"), url
    assert study_folder("postgresql://me@127.0.0.1/db") is None and study_folder("sqlite:///:memory:") is None
