"""Hostile and mistaken input, one case per class: every refusal is exit code 2, one line saying
what is wrong and how to fix it, and nothing written or changed (checksums before and after).

Cases run the real command in-process (click's runner, so a stray exception shows up as one);
``benchmarks/reliability.py`` reports the same figures from ``$PARETONE_RELIABILITY_LOG``.
"""

from __future__ import annotations

import json
import pickle
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from paretone.cli import cli
from paretone.compress import OPERATORS
from tests.conftest import SYNTHETIC as DEVICE
from tests.helpers import make_driver, record, tree_digest, write_tone

NO_GPU_CASE = "GPU workers on a machine without a GPU"


@pytest.fixture(scope="module")
def profiles(synthetic_device) -> Path:
    return synthetic_device[1]


class _Exploit:
    """A pickle that, if ever unpickled, creates the sentinel file."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (open, (str(self.sentinel), "w"))


Case = Callable[[Path, Path, Path], list[str]]  # (tmp, teacher copy, profiles) -> command line


def _search(teacher: Path, profiles: Path, *extra: str) -> list[str]:
    return ["search", "--teacher", str(teacher), "--device", DEVICE, "--profile-dir", str(profiles), *extra]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _config(tmp: Path, teacher: Path, profiles: Path, text: str) -> list[str]:
    config = _write(tmp / "search.toml", text)
    return [*_search(teacher, profiles), "--config", str(config), "--storage", f"sqlite:///{tmp / 'x.db'}"]


def _profile_with(tmp: Path, profiles: Path, edit: Callable[[dict], None]) -> Path:
    data = json.loads((profiles / DEVICE / "profile.json").read_text())
    edit(data)
    target = tmp / "devices"
    _write(target / DEVICE / "profile.json", json.dumps(data, allow_nan=True))
    return target


def _manifest(tmp: Path, rows: list[str], *, bom: bool = False) -> Path:
    for name in ("a.wav", "b.wav"):
        write_tone(tmp / "audio" / name)
    (tmp / "audio" / "sub").mkdir(exist_ok=True)
    text = ("\ufeff" if bom else "") + "path,label\n" + "\n".join(rows) + "\n"
    return _write(tmp / "audio" / "m.csv", text)


def _pickled(tmp: Path, teacher: Path, profiles: Path) -> list[str]:
    (teacher / "weights.safetensors").write_bytes(pickle.dumps(_Exploit(tmp / "pwned")))
    return _search(teacher, profiles)


def _truncated(tmp: Path, teacher: Path, profiles: Path) -> list[str]:
    data = (teacher / "weights.safetensors").read_bytes()
    (teacher / "weights.safetensors").write_bytes(data[: len(data) // 2])
    return _search(teacher, profiles)


def _absurd(tmp: Path, teacher: Path, profiles: Path) -> list[str]:
    header = json.loads((teacher / "config.json").read_text())
    header["model"]["dim"] = header["model"]["blocks"][0]["ffn_dim"] = 2_000_000
    (teacher / "config.json").write_text(json.dumps(header))
    recipe = _write(tmp / "r.json", json.dumps({"format": "paretone.recipe/2"}))
    return ["compress", "--teacher", str(teacher), "--recipe", str(recipe), "--out", str(tmp / "out")]


def _foreign_resume(tmp: Path, teacher: Path, profiles: Path) -> list[str]:
    from paretone.hw_models import DeviceProfile
    from paretone.search import Budget

    profile = DeviceProfile.load(profiles / DEVICE / "profile.json")
    make_driver(teacher, profile, tmp, study="s", budget=Budget(latency_fraction=0.9))  # creates the study
    other = tmp / "other-teacher"
    shutil.copytree(teacher, other)
    storage = f"sqlite:///{tmp / 'study.db'}"
    # device "local" has no profile under tmp/devices: a resume that went on would calibrate first
    return [
        "search", "--teacher", str(other), "--study", "s", "--storage", storage, "--resume",
        "--latency-budget-fraction", "0.9", "--profile-dir", str(tmp / "devices"),
    ]  # fmt: skip


def _corrupt_pick(tmp: Path, teacher: Path, profiles: Path) -> list[str]:
    from paretone.hw_models import DeviceProfile

    make_driver(teacher, DeviceProfile.load(profiles / DEVICE / "profile.json"), tmp, study="s")
    _write(tmp / "pick" / "pick.json", '{"format": "paretone.pick/2", "models": "lots"}')
    storage = f"sqlite:///{tmp / 'study.db'}"
    return [
        "pareto",
        "--study",
        "s",
        "--storage",
        storage,
        "--out",
        str(tmp / "plots"),
        "--pick",
        str(tmp / "pick"),
    ]


def _corrupt_metadata(tmp: Path, teacher: Path, profiles: Path) -> list[str]:
    from paretone.runtime import stamp_metadata

    model = tmp / "model.onnx"
    shutil.copy(teacher / "model.onnx", model)
    stamp_metadata(
        model, {"paretone.labels": "[broken", "paretone.sample_rate": "8000", "paretone.clip_samples": "8000"}
    )
    return ["run-model", str(model), str(write_tone(tmp / "a.wav"))]


CASES: dict[str, dict[str, tuple[Case, str]]] = {
    "output folders": {
        "train into a folder holding other files": (
            lambda tmp, t, p: ["train", "--out", str(_write(tmp / "mine" / "notes.txt", "x").parent)],
            "--overwrite",
        ),
        "train --out naming an existing file": (
            lambda tmp, t, p: ["train", "--out", str(_write(tmp / "taken", "x"))],
            "is a file, not a folder",
        ),
        "compress into the teacher's own folder": (
            lambda tmp, t, p: [
                "compress",
                "--teacher",
                str(t),
                "--recipe",
                str(_write(tmp / "r.json", '{"format": "paretone.recipe/2"}')),
                "--out",
                str(t),
            ],
            "inside the input folder",
        ),
        "validate --report over an existing file": (
            lambda tmp, t, p: [
                "calibrate",
                "--device",
                DEVICE,
                "--profile-dir",
                str(p),
                "--validate",
                "--report",
                str(_write(tmp / "report.json", "{}")),
            ],
            "pass --overwrite to replace it",
        ),
    },
    "storage URLs": {
        "in-memory SQLite": (
            lambda tmp, t, p: [*_search(t, p), "--storage", "sqlite:///:memory:"],
            "in memory",
        ),
        "unsupported scheme": (
            lambda tmp, t, p: [*_search(t, p), "--storage", "redis://localhost/0"],
            "unsupported",
        ),
        "unreachable PostgreSQL": (
            lambda tmp, t, p: [*_search(t, p), "--storage", "postgresql://nobody@127.0.0.1:9/none"],
            "cannot be opened",
        ),
        "garbage study.db": (
            lambda tmp, t, p: [
                *_search(t, p),
                "--storage",
                f"sqlite:///{_write(tmp / 'study.db', 'garbage' * 99)}",
            ],
            "not a SQLite database",
        ),
        "garbage journal": (
            lambda tmp, t, p: [
                *_search(t, p),
                "--storage",
                "journal:" + str(_write(tmp / "j.log", "{x\ny\n")),
            ],
            "not a readable Optuna journal",
        ),
        "storage folder that cannot be created": (
            lambda tmp, t, p: [*_search(t, p), "--storage", f"sqlite:///{_write(tmp / 'f', 'x')}/study.db"],
            "cannot be created",
        ),
        "study file that does not exist": (
            lambda tmp, t, p: ["pareto", "--study", "s", "--storage", f"sqlite:///{tmp / 'none.db'}"],
            "does not exist",
        ),
    },
    "config values": {
        "a number given as a string": (
            lambda tmp, t, p: _config(tmp, t, p, '[search]\ntrials = "12"\n'),
            "trials must be a whole number",
        ),
        "a string where a list belongs": (
            lambda tmp, t, p: _config(tmp, t, p, '[space]\nfreeze = "blocks.0.*"\n'),
            "freeze must be a list of patterns",
        ),
        "formats not a list": (
            lambda tmp, t, p: _config(tmp, t, p, '[space]\nformats = {"*" = "w8a8"}\n'),
            "must be a list of format names",
        ),
        "unknown setting": (
            lambda tmp, t, p: _config(tmp, t, p, "[space]\njunk = 1\n"),
            "unknown settings junk",
        ),
        "unknown sampler": (
            lambda tmp, t, p: _config(tmp, t, p, '[search]\nsampler = "annealing"\n'),
            "use one of",
        ),
        "a flag given as a string": (
            lambda tmp, t, p: _config(tmp, t, p, '[search]\nallocate = "yes"\n'),
            "allocate must be true or false",
        ),
        "not TOML": (lambda tmp, t, p: _config(tmp, t, p, "[search\n"), "cannot parse"),
    },
    "device profiles": {
        "NaN latency": (
            lambda tmp, t, p: [
                *_search(t, _profile_with(tmp, p, lambda d: d["kernels"][0].update(latency_ms=float("nan")))),
                "--storage",
                f"sqlite:///{tmp / 'x.db'}",
            ],
            "malformed device profile",
        ),
        "negative whole-model latency": (
            lambda tmp, t, p: [
                *_search(t, _profile_with(tmp, p, lambda d: d["models"][0].update(latency_ms=-5.0))),
                "--storage",
                f"sqlite:///{tmp / 'x.db'}",
            ],
            "is not a positive finite number",
        ),
        "measured with another ONNX Runtime": (
            lambda tmp, t, p: [
                "calibrate",
                "--device",
                DEVICE,
                "--teacher",
                str(t),
                "--profile-dir",
                str(_profile_with(tmp, p, lambda d: d["fingerprint"].update(onnxruntime="0.0.1"))),
            ],
            "measurements of different devices are not mixed",
        ),
    },
    "teacher folders": {
        "pickle posing as weights": (_pickled, "not a readable safetensors file"),
        "truncated safetensors": (_truncated, "weights.safetensors"),
        "sizes that would exhaust memory": (_absurd, "weights do not match config.json"),
        "no teacher at all": (lambda tmp, t, p: _search(tmp / "nowhere", p), "no teacher there"),
    },
    "manifests": {
        "the same file twice": (
            lambda tmp, t, p: ["data", "--data", str(_manifest(tmp, ["a.wav,x", "b.wav,y", "a.wav,y"]))],
            "rows 2 and 4 both name",
        ),
        "a row naming a folder": (
            lambda tmp, t, p: ["data", "--data", str(_manifest(tmp, ["a.wav,x", "sub,y"]))],
            "is a folder, not an audio file",
        ),
    },
    "JSON files": {
        "a deeply nested recipe": (
            lambda tmp, t, p: [
                "compress",
                "--teacher",
                str(t),
                "--recipe",
                str(_write(tmp / "r.json", "[" * 50_000 + "]" * 50_000)),
                "--out",
                str(tmp / "out"),
            ],
            "nested too deeply",
        ),
        "an unknown operator": (
            lambda tmp, t, p: [
                "compress",
                "--teacher",
                str(t),
                "--recipe",
                str(_write(tmp / "r.json", '{"format": "paretone.recipe/2", "operators": {"sparsify": {}}}')),
                "--out",
                str(tmp / "out"),
            ],
            f"unknown operator 'sparsify': paretone knows {', '.join(OPERATORS)}",
        ),
        "a corrupt pick.json": (_corrupt_pick, "malformed pick report"),
        "corrupt model metadata": (_corrupt_metadata, "paretone.labels"),
    },
    "read-only until accepted": {
        "a resume for another teacher": (_foreign_resume, "was started with another teacher, search space"),
    },
    "budgets": {
        "zero": (lambda tmp, t, p: [*_search(t, p), "--latency-budget-ms", "0"], "must be a positive number"),
        "NaN": (
            lambda tmp, t, p: [*_search(t, p), "--latency-budget-ms", "nan"],
            "must be a positive number",
        ),
        "negative": (
            lambda tmp, t, p: [*_search(t, p), "--memory-budget-mb", "-1"],
            "must be a positive number",
        ),
        "unreachable": (
            lambda tmp, t, p: [
                *_search(t, p),
                "--latency-budget-ms",
                "1e-7",
                "--storage",
                f"sqlite:///{tmp / 'x.db'}",
            ],
            "unreachable",
        ),
        "pick given the search's predicted budget": (
            lambda tmp, t, p: ["pick", "--latency-budget-ms", "1"],
            "give pick --latency-limit-ms instead",
        ),
    },
    "workers": {
        "negative GPUs per worker": (
            lambda tmp, t, p: [*_search(t, p), "--gpus-per-worker", "-1"],
            "--gpus-per-worker must be a number >= 0",
        ),
        "a speed probe interval that is no number of seconds": (
            lambda tmp, t, p: [*_search(t, p), "--probe-every-s", "nan"],
            "--probe-every-s must be seconds >= 0 (0: never probe), got nan",
        ),
        NO_GPU_CASE: (  # refused before calibration or a Ray starts, not left pending
            lambda tmp, t, p: [
                *_search(t, p),
                "--gpus-per-worker",
                "1",
                "--storage",
                f"sqlite:///{tmp / 'x.db'}",
            ],
            "this machine has 0 GPUs",
        ),
    },
}
PARAMS = [(group, name) for group, cases in CASES.items() for name in cases]


@pytest.mark.parametrize(("group", "name"), PARAMS, ids=[f"{g}: {n}" for g, n in PARAMS])
def test_refused_in_one_line_with_nothing_written_or_changed(
    group, name, tiny_teacher, profiles, tmp_path, monkeypatch
):
    if name == NO_GPU_CASE and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU, so GPU workers are not refused here")
    case, needle = CASES[group][name]
    work = tmp_path / "work"
    work.mkdir()
    teacher = tmp_path / "teacher"
    shutil.copytree(tiny_teacher, teacher)
    args = case(tmp_path, teacher, profiles)
    monkeypatch.chdir(work)  # a command must not write into the working folder either
    watched = {"tmp": tmp_path, "shared teacher": tiny_teacher, "profiles": profiles}
    before = {k: tree_digest(v) for k, v in watched.items()}
    result = CliRunner().invoke(cli, args)
    lines = result.stderr.strip().splitlines()
    after = {k: tree_digest(v) for k, v in watched.items()}
    written = sum(len(set(after[k]) - set(before[k])) for k in watched)
    changed = sum(after[k].get(f) != d for k in watched for f, d in before[k].items())
    record(
        f"hostile input: {group}", case=name, exit_code=result.exit_code, lines=len(lines),
        files_written=written, inputs_changed=changed, message=lines[-1] if lines else "",
    )  # fmt: skip
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("paretone: error: "), result.stderr
    assert needle in lines[0], lines[0]
    assert written == 0 and changed == 0, (after, before)
    assert not (tmp_path / "pwned").exists()  # no pickle ever ran


def test_a_manifest_saved_as_csv_utf8_with_a_byte_order_mark_reads(tmp_path):
    rows = [f"{i}.wav,{'xy'[i % 2]},{i % 3}" for i in range(12)]
    for i in range(12):
        write_tone(tmp_path / "audio" / f"{i}.wav", freq=200.0 + 50 * i)
    manifest = _write(tmp_path / "audio" / "m.csv", "\ufeffpath,label,fold\n" + "\n".join(rows) + "\n")
    result = CliRunner().invoke(cli, ["data", "--data", str(manifest)])
    assert result.exit_code == 0, result.output
    assert "12 clips, 2 classes" in result.output and "split fold:2" in result.output


def test_the_resume_hint_is_a_command_that_runs_as_printed(tmp_path):
    from paretone.cli._search import search
    from paretone.search import Budget, Fidelity, SearchSettings

    settings = SearchSettings(
        teacher=tmp_path / "t", study="kws", storage=f"sqlite:///{tmp_path / 'k.db'}", trials=30,
        budget=Budget(latency_fraction=0.25, size_mb=0.5), gpus_per_worker=0.5,
        fidelity=Fidelity(screen_epochs=1, promote_fraction=0.25), probe_every_s=0,
    )  # fmt: skip
    words = shlex.split(settings.resume_hint())
    assert words[:2] == ["paretone", "search"]
    parsed = search.make_context("search", words[2:]).params
    assert parsed["resume"] and parsed["study"] == "kws" and parsed["storage"] == settings.storage
    assert (parsed["latency_budget_fraction"], parsed["size_budget_mb"], parsed["trials"]) == (0.25, 0.5, 30)
    assert parsed["gpus_per_worker"] == 0.5  # a GPU search resumes on its GPUs
    assert (parsed["screen_epochs"], parsed["promote_fraction"]) == (1, 0.25)  # and screens as it did
    assert parsed["probe_every_s"] == 0  # at the calibrated speed, as asked
    assert Path(parsed["teacher"]) == settings.teacher
