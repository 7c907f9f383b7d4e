"""From a real study to a shipped model: pareto, pick (export, measure, card) and run-model.

The study is searched with a deliberately optimistic device profile (1000x too fast), the
"latency predictor wrong on my device" case: every candidate is predicted within a tiny budget
that real ONNX Runtime measurements break, so pick must refuse to ship it. A generous budget ships.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from paretone.models import ASTConfig, build_model, export_onnx, load_model
from paretone.search import Budget, candidates, load_study, pareto_candidates, study_folder
from paretone.ship import PickReport
from tests.helpers import invoke_cli, make_driver, run_cli, synthetic_profile, tree_digest

pytestmark = pytest.mark.slow  # searches with Ray, fine-tunes
DEVICE = "optimistic"


@pytest.fixture(scope="module")
def study(tiny_teacher, tmp_path_factory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("pick")
    profile = synthetic_profile(
        load_model(tiny_teacher).model, root, DEVICE, ns_per_mac=0.001, overhead_ms=0.0
    )
    driver = make_driver(
        tiny_teacher, profile, root, study="p", trials=3, budget=Budget(latency_fraction=1.0),
        warm_start=False,  # random candidates of varied size, not three equally large ones
    )  # fmt: skip
    driver.run()
    return "p", driver.settings.storage


def test_pareto_prints_the_front_and_writes_plots_and_history(study, tmp_path):
    name, storage = study
    result = run_cli("pareto", "--study", name, "--storage", storage, "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "3 fine-tuned trials, 3 feasible" in result.stdout
    assert (tmp_path / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (tmp_path / "pareto.html").read_text()
    assert page.count("<circle") == 3 and "budget" in page and "teacher (predicted)" in page
    rows = (tmp_path / "hypervolume.csv").read_text().splitlines()
    values = [float(r.split(",")[1]) for r in rows[1:]]
    assert rows[0] == "trial,hypervolume" and len(values) == 3 and values == sorted(values) and values[-1] > 0


def test_pick_ships_a_measured_model_with_card_and_baselines(study, tiny_teacher, fsdd, tmp_path):
    name, storage = study
    out = tmp_path / "picked"
    result = run_cli(
        "pick", "--study", name, "--storage", storage, "--latency-limit-ms", "1000", "--out", str(out),
        "--final-epochs", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    parsed = PickReport.read(out / "pick.json")  # the report reads back as what was written
    report = json.loads((out / "pick.json").read_text())
    picked = parsed.picked
    assert [m.name for m in parsed.models] == [
        "picked", "teacher_fp32", "teacher_quantize_dynamic", "teacher_quantize_dynamic_without_front_end"
    ]  # fmt: skip
    assert (out / "baselines" / "teacher-quantize-dynamic-without-front-end.onnx").is_file()
    assert 0 < picked.measured_latency_ms <= 1000 and parsed.attempts[0].within_budget
    assert all(0 <= m.test_score <= 1 and m.peak_bytes >= 0 for m in parsed.models)
    assert parsed.empty_session_peak_bytes > 1e6  # ONNX Runtime's own, reported beside
    assert picked.file_bytes == (out / "model.onnx").stat().st_size and parsed.metric == "accuracy"
    # the shipped file carries the recipe's real kernels and the metadata run-model needs
    model = onnx.load(str(out / "model.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    labels = json.loads(meta["paretone.labels"])
    assert (
        labels == list(load_model(tiny_teacher).labels)
        and json.loads(meta["paretone.recipe"]) == report["recipe"]
    )
    assert meta["paretone.task"] == "classification"
    ops = {n.op_type for n in model.graph.node}
    formats = set(report["layers"].values())
    assert ("MatMulNBits" in ops) == bool(formats & {"w2", "w4", "w8"})
    card = (out / "MODEL_CARD.md").read_text()
    for needle in (
        "quantize_dynamic",
        "Known failure modes",
        "speaker-dependent",
        parsed.measured_on["cpu"],
    ):
        assert needle in card
    assert json.loads(card.split("```json\n")[1].split("```")[0]) == json.loads(
        (out / "recipe.json").read_text()
    )

    recordings = sorted((fsdd / "recordings").glob("*.wav"))[:2]
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00not really a wav")
    run = run_cli("run-model", str(out / "model.onnx"), *map(str, recordings), str(broken), "--json")
    assert run.returncode == 2  # one file could not be read
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["file"] for r in rows] == [str(p) for p in recordings]
    assert all(r["label"] in labels and abs(sum(r["probabilities"].values()) - 1) < 1e-4 for r in rows)
    assert (
        run.stderr.strip().splitlines()
        == [next(line for line in run.stderr.splitlines() if line.startswith("paretone: error: "))]
        and str(broken) in run.stderr
    )


def test_pick_never_ships_a_model_measured_over_budget(study, tmp_path):
    name, storage = study
    out = tmp_path / "picked"
    pool = candidates(load_study(name, storage))
    slowest = max(c.latency_ms for c in pool)
    budget = round(slowest * 1.2, 4)  # every candidate is predicted within it...
    assert budget < 0.05  # ...and no real model with a front-end runs in 50 us on a CPU
    result = run_cli(
        "pick", "--study", name, "--storage", storage, "--latency-limit-ms", str(budget), "--out", str(out),
        "--attempts", "2",
    )  # fmt: skip
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("paretone: error: no model shipped") and "Traceback" not in result.stderr
    assert not (out / "model.onnx").exists() and not (out / "MODEL_CARD.md").exists()
    rejected = sorted((out / "rejected").iterdir())
    tried = min(2, len(pareto_candidates(pool)))  # every front member fits the prediction
    assert len(rejected) == tried >= 1  # each attempt kept, with why
    for folder in rejected:
        why = json.loads((folder / "why.json").read_text())
        assert why["latency_ms"] > why["limit_ms"] == budget and (folder / "model.onnx").is_file()


def test_pick_without_a_fitting_candidate_names_the_nearest(study, tmp_path):
    name, storage = study
    out = tmp_path / "none"
    result = invoke_cli(
        "pick", "--study", name, "--storage", storage, "--latency-limit-ms", "1e-9", "--out", str(out)
    )
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert "no Pareto-optimal model" in last and "the fastest are trial" in last
    assert not out.exists()
    for flag, bad, needle in [
        ("--latency-limit-ms", "-1", "must be a positive number"),
        ("--latency-limit-ms", "nan", "must be a positive number"),
        ("--latency-limit-ms", "0", "must be a positive number"),
        ("--latency-limit-fraction", "1.5", "must be in (0, 1]"),
        ("--latency-budget-ms", "1", "give pick --latency-limit-ms instead"),  # the old spelling
        ("--latency-budget-fraction", "0.5", "give pick --latency-limit-fraction instead"),
    ]:
        refused = invoke_cli("pick", "--study", name, "--storage", storage, flag, bad, cwd=tmp_path)
        assert refused.returncode == 2 and needle in refused.stderr
    missing = invoke_cli(
        "pick", "--study", "nope", "--storage", storage, "--latency-limit-ms", "1", cwd=tmp_path
    )
    assert missing.returncode == 2 and "study 'nope' not found" in missing.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # refused before writing anything


def test_pick_works_from_any_folder_and_never_replaces_what_it_did_not_write(study, tmp_path):
    name, storage = study
    out = tmp_path / "shipped"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    args = ("pick", "--study", name, "--storage", storage, "--latency-limit-ms", "1000", "--out", str(out))
    refused = invoke_cli(*args, cwd=elsewhere)
    assert refused.returncode == 2 and "--overwrite" in refused.stderr.strip().splitlines()[-1]
    before = tree_digest(out)
    assert before == {"notes.txt": before["notes.txt"]}  # refused before writing anything
    shipped = run_cli(*args, "--overwrite", cwd=elsewhere)  # from another folder: paths still resolve
    assert shipped.returncode == 0, shipped.stderr
    assert (out / "notes.txt").read_text() == "mine" and (out / "model.onnx").is_file()
    again = invoke_cli(*args, "--overwrite", cwd=elsewhere)  # its own files are replaced (in-process)
    assert again.returncode == 0 and (out / "notes.txt").read_text() == "mine"
    assert study_folder(storage) is not None


def test_run_model_refuses_files_that_are_not_paretone_models(tmp_path):
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"not onnx")
    result = invoke_cli("run-model", str(fake), str(tmp_path / "a.wav"))
    assert result.returncode == 2 and "ONNX Runtime cannot load it" in result.stderr
    result = invoke_cli("run-model", str(tmp_path / "absent.onnx"), str(tmp_path / "a.wav"))
    assert result.returncode == 2 and "no such model file" in result.stderr
    assert Path(tmp_path / "model.onnx").read_bytes() == b"not onnx"
    # an ONNX file with a missing initializer: refused in one line, naming the tensor
    model = build_model(ASTConfig.uniform(num_classes=3, dim=16, depth=1, heads=2))
    exported = onnx.load(str(export_onnx(model, tmp_path / "m.onnx")))
    missing = exported.graph.initializer[-1].name
    del exported.graph.initializer[-1]
    onnx.save(exported, str(tmp_path / "broken.onnx"))
    result = invoke_cli("run-model", str(tmp_path / "broken.onnx"), str(tmp_path / "a.wav"))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and missing in lines[0] and "cannot load it" in lines[0]
