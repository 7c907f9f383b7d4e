"""The command line as a user meets it: real processes, exit codes, files written."""

from __future__ import annotations

import json
import subprocess

import pytest
import torch

from paretone.models import load_model
from tests.helpers import run_cli as run
from tests.helpers import write_tone


def _assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if "error" in line.lower()]
    # progress bars may precede it; the error itself is one line, the last one
    assert errors == [lines[-1]] and lines[-1].startswith("paretone: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[-1]


def test_missing_data_path(tmp_path):
    _assert_one_line_error(run("data", "--data", str(tmp_path / "nope")), "nope", "no such file")


def test_corrupt_wav_is_named_when_checking(tmp_path):
    write_tone(tmp_path / "yes" / "a.wav")
    for i in range(9):
        write_tone(tmp_path / "no" / f"{i}.wav")
        write_tone(tmp_path / "yes" / f"{i}.wav")
    (tmp_path / "no" / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    result = run("data", "--data", str(tmp_path), "--split", "hash", "--check")
    _assert_one_line_error(result, "broken.wav", "cannot read audio")


def test_unknown_speaker(fsdd):
    _assert_one_line_error(run("data", "--data", str(fsdd), "--split", "speaker:zed"), "zed")


def test_data_describes_fsdd(fsdd):
    result = run("data", "--data", str(fsdd), "--split", "speaker:nicolas")
    assert result.returncode == 0, result.stderr
    assert "3000 clips, 10 classes" in result.stdout
    assert "split speaker:nicolas: train 2000, validation 500, test 500" in result.stdout


def test_bad_training_option_is_a_one_line_error(fsdd, tmp_path):
    result = run("train", "--data", str(fsdd), "--model", "cnn", "--channels", "8,x", "--out", str(tmp_path))
    _assert_one_line_error(result, "--channels")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def trained(tiny_teacher):
    """The shared tiny teacher, trained by `paretone train`, and what that command printed."""
    return tiny_teacher, (tiny_teacher.parent / "train.stdout").read_text()


def test_train_writes_a_loadable_teacher_with_report(trained):
    out, stdout = trained
    assert sorted(p.name for p in out.iterdir()) == [
        ".paretone-output.json",  # what paretone wrote here, so a re-run replaces only that
        "config.json",
        "metrics.json",
        "model.onnx",
        "weights.safetensors",
    ]
    assert (out / "weights.safetensors").stat().st_mode & 0o044 == 0o044  # an ordinary file mode
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["split"] == "official"
    assert metrics["training"]["epochs_run"] == 2
    # an AST this small still learns digits in two epochs; chance is 10%
    assert metrics["accuracy"]["test"] > 0.4, metrics["accuracy"]  # the figures, should it ever fail
    assert metrics["onnx"]["top1_agreement"] == 1.0, metrics["onnx"]
    assert metrics["onnx"]["max_abs_logit_diff"] < 1e-3, metrics["onnx"]
    assert metrics["onnx"]["test_accuracy"] == pytest.approx(metrics["accuracy"]["test"])
    assert metrics["latency_ms"]["threads_1"]["median_ms"] > 0
    assert "test accuracy" in stdout and "ORT latency, threads 1" in stdout
    loaded = load_model(out)
    assert loaded.labels == tuple(str(d) for d in range(10))
    assert loaded.model(torch.zeros(1, 8000)).shape == (1, 10)


@pytest.mark.slow  # distils, exports and measures a student
def test_compress_builds_a_smaller_student_with_real_kernels(trained, tmp_path):
    teacher, _ = trained
    recipe = {
        "format": "paretone.recipe/1",
        "heads": {"blocks.0.attn.heads": 1},
        "channels": {"blocks.0.ffn.hidden": 0.5},
        "precision": {
            "blocks.0.attn.q": {"weight_bits": 8, "activation_bits": 8},
            "blocks.0.ffn.fc1": {"weight_bits": 4, "activation_bits": None},
        },
        "distillation": {"temperature": 2.0, "alpha": 0.5},
    }
    (tmp_path / "r.json").write_text(json.dumps(recipe))
    out = tmp_path / "student"
    result = run(
        "compress",
        "--teacher",
        str(teacher),
        "--recipe",
        str(tmp_path / "r.json"),
        "--epochs",
        "1",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["split"] == "official"
    assert metrics["params"]["student"] < metrics["params"]["teacher"]
    assert metrics["file_bytes"]["student"] < metrics["file_bytes"]["teacher"]
    assert metrics["layers"]["blocks.0.attn.q"]["format"] == "w8a8"
    assert metrics["layers"]["blocks.0.ffn.fc1"]["onnx_node"] == "blocks.0.ffn.fc1/MatMul_Q4"
    assert metrics["layers"]["blocks.0.attn.k"]["format"] == "float"
    assert metrics["onnx_agreement"]["top1"] > 0.9
    assert {"recipe.json", "model.onnx", "weights.safetensors", "config.json"} <= {
        p.name for p in out.iterdir()
    }
    assert "layer formats" in result.stdout


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{not json", "not valid JSON"),
        ('{"format": "paretone.recipe/1", "heads": {"blocks.5.attn.heads": 1}}', "blocks.5.attn.heads"),
        ('{"format": "paretone.recipe/1", "channels": {"blocks.0.ffn.hidden": 0}}', "(0, 1]"),
    ],
)
def test_compress_refuses_bad_recipes_and_writes_nothing(trained, tmp_path, content, needle):
    teacher, _ = trained
    (tmp_path / "r.json").write_text(content)
    out = tmp_path / "student"
    result = run(
        "compress", "--teacher", str(teacher), "--recipe", str(tmp_path / "r.json"), "--out", str(out)
    )
    _assert_one_line_error(result, needle)
    assert not out.exists()


def test_train_offers_every_family_and_refuses_foreign_sizes(fsdd, tmp_path):
    from paretone.models import FAMILIES

    help_text = run("train", "--help").stdout
    assert all(name in help_text for name in FAMILIES)
    result = run("train", "--data", str(fsdd), "--model", "cnn", "--dim", "64", "--out", str(tmp_path / "t"))
    _assert_one_line_error(result, "--dim is not a size of the cnn family")
    assert not (tmp_path / "t").exists()


def test_compress_refuses_a_pickled_teacher(tmp_path):
    (tmp_path / "teacher").mkdir()
    (tmp_path / "teacher" / "model.pt").write_bytes(b"\x80\x04N.")
    (tmp_path / "r.json").write_text('{"format": "paretone.recipe/1"}')
    result = run("compress", "--teacher", str(tmp_path / "teacher"), "--recipe", str(tmp_path / "r.json"))
    _assert_one_line_error(result, "never loaded")
