"""A search on a Ray cluster that was running before it: two real nodes started on loopback with
the `ray` CLI, the search joining by address. It stops only the cluster it started (`ray stop`
would end every Ray on the machine, a user's or another test's too)."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import SYNTHETIC as DEVICE
from tests.helpers import free_port, run_cli

pytestmark = pytest.mark.slow  # starts a Ray cluster


@pytest.fixture(scope="module")
def profile(synthetic_device) -> tuple:
    return synthetic_device


@pytest.mark.skipif(shutil.which("ray") is None, reason="the ray CLI is not installed")
def _session_pids(session: str) -> list[int]:
    """Processes of one Ray session: each names its session folder on its command line."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # gone meanwhile
            continue
        if session.encode() in cmdline:
            pids.append(int(entry.name))
    return pids


def _stop_session(session: str, port: int) -> None:
    """Stop the cluster's processes and forget its address, as `ray stop` would for it alone."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _session_pids(session):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.time() + 20
        while _session_pids(session) and time.time() < deadline:
            time.sleep(0.5)
    current = Path("/tmp/ray/ray_current_cluster")  # where `ray start` left the head's address
    with contextlib.suppress(OSError):
        if current.read_text().strip().endswith(f":{port}"):
            current.unlink()


def test_search_runs_on_an_existing_two_node_ray_cluster(tiny_teacher, profile, tmp_path, monkeypatch):
    _, profiles = profile
    # Ray 2.60 turns token authentication on for a head reachable beyond loopback, and a joining
    # node must then be in the same mode: every process of this cluster is told so, with a token of
    # its own (a fresh machine has no ~/.ray/auth_token, and a user's is not ours to create), as an
    # operator's cluster would be configured.
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", secrets.token_hex(32))
    port = free_port()
    env_args = ("--num-cpus", "1", "--disable-usage-stats")
    head_args = [
        "--head",
        "--node-ip-address",
        "127.0.0.1",
        "--port",
        str(port),
        "--include-dashboard",
        "false",
    ]
    head = subprocess.run(
        ["ray", "start", *head_args, *env_args], capture_output=True, text=True, timeout=180
    )
    assert head.returncode == 0, head.stderr
    session = Path("/tmp/ray/session_latest").resolve().name  # the head's, just written
    try:
        worker = subprocess.run(
            ["ray", "start", "--address", f"127.0.0.1:{port}", "--node-ip-address", "127.0.0.1", *env_args],
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert worker.returncode == 0, worker.stderr
        result = run_cli(
            "search", "--teacher", str(tiny_teacher), "--device", DEVICE, "--profile-dir", str(profiles),
            "--study", "cluster", "--storage", f"sqlite:///{tmp_path / 'cluster.db'}", "--trials", "2",
            "--workers", "2", "--epochs", "1", "--latency-budget-fraction", "1.0",
            "--ray-address", f"127.0.0.1:{port}",
            cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "study cluster: 2 fine-tuned" in result.stdout
        status = subprocess.run(
            ["ray", "status", "--address", f"127.0.0.1:{port}"], capture_output=True, text=True
        )
        assert status.stdout.count("node_") >= 2  # both nodes were up for the search
    finally:
        _stop_session(session, port)
    assert not _session_pids(session)
