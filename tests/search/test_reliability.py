"""Fault injection with real processes: kill -9 of the driver and of a Ray worker, NaN losses,
concurrent drivers on journal, SQLite and PostgreSQL storage, kills in the middle of writes.

Every test checks the same promise: no finished trial or artifact lost, nothing left RUNNING,
failures recorded with their reason, the requested number of trials in the end.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from safetensors.torch import load_file, save_file

from paretone.compress import teacher_logits
from paretone.evaluators import load_context
from paretone.search import Budget, Driver, make_storage
from tests.conftest import SYNTHETIC as DEVICE
from tests.helpers import free_port, make_driver, record, run_cli

pytestmark = pytest.mark.slow  # real drivers, real Ray, a real PostgreSQL server


@pytest.fixture(scope="module")
def profiles(synthetic_device) -> Path:
    return synthetic_device[1]


def _search_args(teacher: Path, profiles: Path, storage: str, study: str, trials: int) -> list[str]:
    return [
        "search", "--teacher", str(teacher), "--device", DEVICE, "--profile-dir", str(profiles),
        "--study", study, "--storage", storage, "--trials", str(trials), "--epochs", "1",
        "--latency-budget-fraction", "1.0", "--sampler", "random", "--stale-after-s", "12",
    ]  # fmt: skip


def _popen_search(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "paretone.cli", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: the kill reaches Ray's processes too
    )


def _trials(storage: str, study: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name=study, storage=make_storage(storage)).get_trials()
    except KeyError:  # not created yet
        return []


def _wait_for(predicate, timeout_s: float, what: str) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def _record_failures(fault: str, trials: list[optuna.trial.FrozenTrial]) -> None:
    record(
        fault, requested=2, failed=sum(t.state == TrialState.FAIL for t in trials),
        finished=_finished(trials), left_running=sum(t.state == TrialState.RUNNING for t in trials),
        reason=trials[0].user_attrs.get("fail_reason"),
    )  # fmt: skip


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _finished(trials: list[optuna.trial.FrozenTrial]) -> int:
    tuned = sum(t.state == TrialState.COMPLETE and t.user_attrs.get("fine_tuned") for t in trials)
    return tuned + sum(t.state == TrialState.FAIL and not t.user_attrs.get("retried") for t in trials)


@pytest.mark.parametrize("kind", ["journal", "sqlite"])  # the default storage, and SQLite
def test_driver_killed_mid_study_resumes_to_exactly_the_requested_trials(
    tiny_teacher, profiles, tmp_path, kind
):
    storage = f"journal:{tmp_path / 'kill.log'}" if kind == "journal" else f"sqlite:///{tmp_path / 'kill.db'}"
    args = _search_args(tiny_teacher, profiles, storage, "k", trials=3)
    driver = _popen_search(args, tmp_path)

    def one_done_one_running() -> bool:
        trials = _trials(storage, "k")
        done = [t for t in trials if t.state == TrialState.COMPLETE and t.user_attrs.get("fine_tuned")]
        return bool(done) and any(t.state == TrialState.RUNNING for t in trials)

    try:
        _wait_for(one_done_one_running, 600, "a finished and a running trial")
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(timeout=60)
    before = _trials(storage, "k")
    kept = {t.number: t.values for t in before if t.state == TrialState.COMPLETE}
    orphans = [t.number for t in before if t.state == TrialState.RUNNING]
    folders = {n: tmp_path / "runs" / "k" / "trials" / f"{n:05d}" for n in kept}
    digests = {n: _digest(f) for n, f in folders.items() if f.is_dir()}

    resumed = run_cli(*args, "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    # a synthetic profile cannot be probed, and the summary says so rather than pretend
    assert (
        f"screened at the calibrated speed: device profile {DEVICE!r} holds no speed probe" in resumed.stdout
    )
    after = {t.number: t for t in _trials(storage, "k")}
    for number, values in kept.items():
        assert after[number].values == values  # finished trials kept as they were
    for number, digest in digests.items():
        assert _digest(folders[number]) == digest  # and their artifacts byte for byte
    for number in orphans:
        assert (
            after[number].state == TrialState.FAIL
            and "no heartbeat" in after[number].user_attrs["fail_reason"]
        )
        retries = [t for t in after.values() if t.user_attrs.get("retry_of") == number]
        # retried once, with every parameter the orphan had (killed while being proposed, it may
        # hold only some: the retry samples the rest)
        assert len(retries) == 1 and after[number].params.items() <= retries[0].params.items()
    left = [t for t in after.values() if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    intact = sum(after[n].values == v for n, v in kept.items())
    retried = sum(1 for t in after.values() if t.user_attrs.get("retry_of") in orphans)
    record(
        f"driver SIGKILL mid-study, then --resume ({kind})",
        requested=3, complete_at_kill=len(kept), kept=intact, lost=len(kept) - intact,
        left_running=len(orphans), retried=retried, finished=_finished(list(after.values())),
        artifacts_intact=all(_digest(folders[n]) == d for n, d in digests.items()),
    )  # fmt: skip
    assert not left
    assert _finished(list(after.values())) == 3


def _kill_worker_once(stop: threading.Event, killed: list[int]) -> None:
    """SIGKILL the first Ray worker process seen fine-tuning a trial."""
    while not stop.is_set() and not killed:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if title.startswith("ray::TrialWorker.fine_tune"):
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
                return
        time.sleep(0.2)


def _driver(teacher: Path, profiles: Path, tmp_path: Path, **overrides) -> Driver:
    from paretone.hw_models import DeviceProfile

    profile = DeviceProfile.load(profiles / DEVICE / "profile.json")
    overrides = {"study": "w", "trials": 2, "budget": Budget(latency_fraction=1.0), **overrides}
    return make_driver(teacher, profile, tmp_path, **overrides)


def test_a_killed_ray_worker_fails_its_trial_with_the_reason_and_it_is_retried(
    tiny_teacher, profiles, tmp_path, local_ray
):
    driver = _driver(tiny_teacher, profiles, tmp_path, trials=2)
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_worker_once, args=(stop, killed), daemon=True)
    killer.start()
    try:
        summary = driver.run()
    finally:
        stop.set()
        killer.join(timeout=5)
    assert killed, "no worker was seen fine-tuning"
    trials = _trials(driver.settings.storage, "w")
    record(
        "Ray worker SIGKILL mid-trial",
        requested=2, failed=sum(t.state == TrialState.FAIL for t in trials),
        retried=sum("retry_of" in t.user_attrs for t in trials), finished=_finished(trials),
        reason=next((t.user_attrs["fail_reason"] for t in trials if t.state == TrialState.FAIL), None),
    )  # fmt: skip
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == 1 and failed[0].user_attrs["fail_reason"].startswith("worker died")
    assert failed[0].user_attrs["retried"] is True
    retry = [t for t in trials if t.user_attrs.get("retry_of") == failed[0].number]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE  # on a fresh worker
    assert summary.fine_tuned == 2 and _finished(trials) == 2


def test_nan_losses_fail_their_trials_with_the_reason_and_the_study_ends(
    tiny_teacher, profiles, tmp_path, local_ray
):
    teacher = tmp_path / "teacher"
    shutil.copytree(tiny_teacher, teacher)
    # a corrupted teacher-logits cache (NaN): distillation loss is NaN from the first batch
    context = load_context(teacher)
    teacher_logits(context.teacher, context.sets.train, cache_dir=teacher / "cache")  # as workers do
    (cache,) = (teacher / "cache").glob("teacher-logits-*.safetensors")
    tensors = {k: v * float("nan") for k, v in load_file(str(cache)).items()}
    save_file(tensors, str(cache))
    driver = _driver(teacher, profiles, tmp_path, study="nan", trials=2)
    summary = driver.run()
    trials = _trials(driver.settings.storage, "nan")
    _record_failures("NaN loss (teacher-logits cache corrupted with NaN)", trials)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL]
    assert all("FloatingPointError" in t.user_attrs["fail_reason"] for t in trials)
    assert all(t.user_attrs["retried"] is False for t in trials)  # a numeric failure is not retried
    assert summary.failed == 2 and _finished(trials) == 2


def _postgres_bin() -> Path | None:
    """Debian's PostgreSQL server binaries (``.ci/run`` installs them where they are absent)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


@contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL server on loopback; yields its URL, stops and deletes it after."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip(
            "no PostgreSQL server binaries in /usr/lib/postgresql: install postgresql (Debian's package)"
        )
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # initdb refuses root
    root = Path(tempfile.mkdtemp(prefix="paretone-pg-"))
    if as_postgres:
        shutil.chown(root, "postgres")
    port, data = free_port(), root / "data"

    def run(*command: str) -> None:
        subprocess.run([*as_postgres, *command], check=True, capture_output=True, timeout=120)

    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "paretone")
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start")
        try:
            run(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "paretone", "studies")
            yield f"postgresql://paretone@127.0.0.1:{port}/studies"
        finally:
            run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def _storage(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "postgresql":
        with postgres_server() as url:
            yield url
    else:
        yield f"journal:{tmp_path / 'j.log'}" if kind == "journal" else f"sqlite:///{tmp_path / 'c.db'}"


@pytest.mark.parametrize("kind", ["journal", "sqlite", "postgresql"])  # PostgreSQL: started by the test
def test_concurrent_drivers_share_one_study_without_duplicates_or_losses(
    tiny_teacher, profiles, tmp_path, kind
):
    with _storage(kind, tmp_path) as storage:
        args = _search_args(tiny_teacher, profiles, storage, "c", trials=4)
        first = _popen_search(args, tmp_path)
        _wait_for(lambda: bool(_trials(storage, "c")), 300, "the study to exist")
        second = _popen_search([*args, "--resume"], tmp_path)
        errors = [process.communicate(timeout=900)[1].decode()[-2000:] for process in (first, second)]
        trials = _trials(storage, "c")
    assert first.returncode == 0 and second.returncode == 0, errors
    tuned = [t for t in trials if t.state == TrialState.COMPLETE and t.user_attrs.get("fine_tuned")]
    numbers = [t.number for t in trials]
    folders = [tmp_path / "runs" / "c" / "trials" / f"{t.number:05d}" for t in tuned]
    record(
        f"2 drivers at once on one study ({kind})",
        requested=4, fine_tuned=len(tuned), duplicates=len(numbers) - len(set(numbers)),
        lost=sum(not (f / "weights.safetensors").is_file() for f in folders),
        left_running=sum(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials),
    )  # fmt: skip
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert 4 <= len(tuned) <= 5  # the count is shared; at most one launch can race past it
    assert len(numbers) == len(set(numbers))
    assert all((f / "weights.safetensors").is_file() and (f / "recipe.json").is_file() for f in folders)


_WRITER = """
import sys
from paretone._io import write_json
path = sys.argv[1]
i = 0
while True:
    i += 1
    write_json(path, {"generation": i, "payload": [i] * 50000})
"""


def test_a_kill_at_any_moment_leaves_the_old_or_the_new_file_never_a_torn_one(tmp_path):
    target = tmp_path / "state.json"
    generations = []
    for attempt in range(12):
        writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)])
        time.sleep(0.6 + 0.07 * attempt)  # a different moment of a write each time
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        data = json.loads(target.read_text())  # always parses: old or new, never a mix
        assert data["payload"] == [data["generation"]] * 50000
        generations.append(data["generation"])
    record(
        "SIGKILL during atomic JSON writes", kills=12, torn=0, distinct_versions_seen=len(set(generations))
    )
    assert len(set(generations)) > 1  # the file really was being rewritten when killed


def test_a_worker_over_its_memory_cap_fails_its_trial_with_the_reason(
    tiny_teacher, profiles, tmp_path, local_ray
):
    # 200 MB: far below what a worker holding torch, the teacher and the decoded audio resides in
    driver = _driver(tiny_teacher, profiles, tmp_path, study="m", trials=2, worker_memory_mb=200)
    summary = driver.run()
    trials = _trials(driver.settings.storage, "m")
    _record_failures("worker over its memory cap", trials)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL]
    for t in trials:
        assert "exceeded its cap of 210 MB" in t.user_attrs["fail_reason"]
        assert t.user_attrs["retried"] is False  # the same recipe would only do it again
    assert summary.failed == 2 and _finished(trials) == 2
