"""`paretone train` on a multi-label manifest: mAP and F1 in metrics.json, thresholds in the model."""

from __future__ import annotations

import json

import onnx
import pytest

from tests.helpers import invoke_cli, run_cli, write_tone

pytestmark = pytest.mark.slow


def test_train_on_mixtures_reports_map_and_f1_and_ships_its_thresholds(tiny_mixtures, tmp_path):
    out = tmp_path / "teacher"
    result = run_cli(
        "train", "--data", str(tiny_mixtures / "mixtures.csv"), "--model", "cnn", "--channels", "8,8",
        "--epochs", "2", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "multilabel" and 0 < metrics["map"]["test"] <= 1
    for key in ("test_map", "test_f1_micro", "test_f1_macro"):
        assert 0 <= metrics[key] <= 1, key
    assert metrics["test_map"] == metrics["map"]["test"] and len(metrics["test_per_class_ap"]) == 10
    thresholds = metrics["decision"]
    assert len(thresholds) == 10 and all(0 < t < 1 for t in thresholds)
    assert metrics["model"]["config"]["front_end"]["clip_samples"] == 16000  # the data's 2 s, not 1 s
    assert "test map" in result.stdout and "test f1_micro" in result.stdout

    props = {p.key: p.value for p in onnx.load(str(out / "model.onnx")).metadata_props}
    assert json.loads(props["paretone.thresholds"]) == pytest.approx(thresholds)
    clip = next((tiny_mixtures / "clips").glob("*.wav"))
    run = run_cli("run-model", str(out / "model.onnx"), str(clip), "--json")
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    present = [label for label, t in zip(map(str, range(10)), thresholds, strict=True)
               if answer["probabilities"][label] >= t]  # fmt: skip
    assert sorted(answer["labels"]) == sorted(present)


def test_a_label_only_in_the_test_fold_is_one_line_and_exit_2(tmp_path):
    rows = ["path,labels,fold"]
    for i, (labels, fold) in enumerate([("a", 1), ("b", 1), ("a;b", 2), ("a", 3), ("b;c", 3)]):
        write_tone(tmp_path / f"{i}.wav", freq=300 + 40 * i)
        rows.append(f"{i}.wav,{labels},{fold}")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    result = invoke_cli("train", "--data", str(tmp_path / "m.csv"), "--out", str(tmp_path / "t"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "c have no positive training clip" in result.stderr
    assert not (tmp_path / "t").exists()
