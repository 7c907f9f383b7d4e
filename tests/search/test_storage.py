"""Storage URLs are checked before anything starts, and a broken one is one line."""

from __future__ import annotations

import sqlite3

import pytest

from paretone.errors import ConfigError
from paretone.search import check_storage, make_storage


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


def test_a_search_storage_writes_ahead_and_its_commits_survive_a_killed_process(tmp_path):
    import subprocess
    import sys

    import optuna

    path = tmp_path / "study.db"
    storage = make_storage(f"sqlite:///{path}")
    with storage.engine.connect() as connection:  # a pooled connection, not only the first one
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    storage.engine.dispose()
    writer = f"""
import os, optuna
from paretone.search import make_storage
study = optuna.create_study(study_name="s", storage=make_storage("sqlite:///{path}"))
trial = study.ask({{"x": optuna.distributions.FloatDistribution(0, 2)}})
study.tell(trial, 0.5)
os._exit(9)  # no clean shutdown: nothing is checkpointed or closed
"""
    assert subprocess.run([sys.executable, "-c", writer]).returncode == 9
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    reread = optuna.load_study(study_name="s", storage=make_storage(f"sqlite:///{path}", create=False))
    assert [t.value for t in reread.trials] == [0.5]
