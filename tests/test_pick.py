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
from conftest import make_driver, run_cli, synthetic_profile

from paretone.compress import export_onnx
from paretone.errors import ConfigError
from paretone.models import ASTConfig, build_model, load_model
from paretone.search import (
    Budget,
    Candidate,
    candidates,
    hypervolume,
    hypervolume_history,
    load_study,
)
from paretone.search._front import pareto_candidates, within
from paretone.search._pick import PickSettings, resolve_budget

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


def _candidate(trial: int, accuracy: float, latency_ms: float, memory: float = 1.0) -> Candidate:
    return Candidate(trial, accuracy, latency_ms, memory, 0, 0, 0, True, {}, None)


def test_front_choice_and_hypervolume_on_known_points():
    pool = [
        _candidate(0, 0.90, 1.0),
        _candidate(1, 0.95, 2.0),
        _candidate(2, 0.85, 1.5),  # dominated by 0
        _candidate(3, 0.95, 2.0, memory=2.0),  # dominated by 1 (more memory)
        _candidate(4, 0.99, 3.0),
    ]
    assert [c.trial for c in pareto_candidates(pool)] == [0, 1, 4]
    assert [c.trial for c in within(pareto_candidates(pool), latency_ms=2.5)] == [1, 0]
    assert within(pool, latency_ms=2.5, memory_mb=1.5e-6)[0].trial == 1
    # steps: 0.90 over [1, 2), 0.95 over [2, 2.5); trial 4 is beyond the budget
    assert hypervolume(pool, 2.5) == pytest.approx(0.90 * 1.0 + 0.95 * 0.5)
    history = hypervolume_history(pool, 2.5)
    assert [t for t, _ in history] == [0, 1, 2, 3, 4]
    assert [round(v, 6) for _, v in history] == [1.35, 1.375, 1.375, 1.375, 1.375]


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
        "pick", "--study", name, "--storage", storage, "--latency-budget-ms", "1000", "--out", str(out),
        "--final-epochs", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "pick.json").read_text())
    picked = report["models"]["picked"]
    assert set(report["models"]) == {"picked", "teacher_fp32", "teacher_quantize_dynamic"}
    assert 0 < picked["measured_latency_ms"] <= 1000 and report["attempts"][0]["within_budget"]
    assert all(0 <= m["test_accuracy"] <= 1 and m["peak_bytes"] >= 0 for m in report["models"].values())
    assert report["empty_session_peak_bytes"] > 1e6  # ONNX Runtime's own, reported beside
    assert picked["file_bytes"] == (out / "model.onnx").stat().st_size
    # the shipped file carries the recipe's real kernels and the metadata run-model needs
    model = onnx.load(str(out / "model.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    labels = json.loads(meta["paretone.labels"])
    assert (
        labels == list(load_model(tiny_teacher).labels)
        and json.loads(meta["paretone.recipe"]) == report["recipe"]
    )
    ops = {n.op_type for n in model.graph.node}
    formats = set(report["layers"].values())
    assert ("MatMulNBits" in ops) == bool(formats & {"w2", "w4", "w8"})
    card = (out / "MODEL_CARD.md").read_text()
    for needle in (
        "quantize_dynamic",
        "Known failure modes",
        "speaker-dependent",
        report["measured_on"]["cpu"],
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
        "pick", "--study", name, "--storage", storage, "--latency-budget-ms", str(budget), "--out", str(out),
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
        assert why["latency_ms"] > why["budget_ms"] == budget and (folder / "model.onnx").is_file()


def test_a_fraction_budget_follows_the_teacher_measured_beside_each_candidate(tmp_path):
    searched = {"budget": {"latency_fraction": 0.25}, "teacher_predicted_latency_ms": 4.0}

    def settings(**budget) -> PickSettings:
        budget = {"latency_budget_ms": None, **budget}
        return PickSettings(study="s", storage="sqlite://", out=tmp_path, **budget)

    own = resolve_budget(settings(), searched)  # the study's own fraction
    assert (own.choose_ms, own.fraction) == (1.0, 0.25)  # candidates are chosen on the prediction...
    assert own.limit_beside(8.0) == 2.0 and own.limit_beside(2.0) == 0.5  # ...checked on the measurement
    given = resolve_budget(settings(latency_budget_fraction=0.5), searched)
    assert (given.choose_ms, given.limit_beside(3.0)) == (2.0, 1.5)
    absolute = resolve_budget(settings(latency_budget_ms=1.5), searched)
    assert (absolute.choose_ms, absolute.limit_beside(8.0)) == (1.5, 1.5)  # milliseconds stay put
    with pytest.raises(ConfigError, match="lacks the teacher's latency"):
        resolve_budget(settings(), {"budget": {"latency_fraction": 0.25}})


def test_pick_without_a_fitting_candidate_names_the_nearest(study, tmp_path):
    name, storage = study
    out = tmp_path / "none"
    result = run_cli(
        "pick", "--study", name, "--storage", storage, "--latency-budget-ms", "1e-9", "--out", str(out)
    )
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert "no Pareto-optimal model" in last and "the fastest are trial" in last
    assert not out.exists()
    for flag, bad, needle in [
        ("--latency-budget-ms", "-1", "must be a positive number"),
        ("--latency-budget-ms", "nan", "must be a positive number"),
        ("--latency-budget-ms", "0", "must be a positive number"),
        ("--latency-budget-fraction", "1.5", "must be in (0, 1]"),
    ]:
        refused = run_cli("pick", "--study", name, "--storage", storage, flag, bad, cwd=tmp_path)
        assert refused.returncode == 2 and needle in refused.stderr
    missing = run_cli(
        "pick", "--study", "nope", "--storage", storage, "--latency-budget-ms", "1", cwd=tmp_path
    )
    assert missing.returncode == 2 and "study 'nope' not found" in missing.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # refused before writing anything


def test_run_model_refuses_files_that_are_not_paretone_models(tmp_path):
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"not onnx")
    result = run_cli("run-model", str(fake), str(tmp_path / "a.wav"))
    assert result.returncode == 2 and "ONNX Runtime cannot load it" in result.stderr
    result = run_cli("run-model", str(tmp_path / "absent.onnx"), str(tmp_path / "a.wav"))
    assert result.returncode == 2 and "no such model file" in result.stderr
    assert Path(tmp_path / "model.onnx").read_bytes() == b"not onnx"
    # an ONNX file with a missing initializer: refused in one line, naming the tensor
    exported = onnx.load(
        str(
            export_onnx(
                build_model(ASTConfig.uniform(num_classes=3, dim=16, depth=1, heads=2)), tmp_path / "m.onnx"
            )
        )
    )
    missing = exported.graph.initializer[-1].name
    del exported.graph.initializer[-1]
    onnx.save(exported, str(tmp_path / "broken.onnx"))
    result = run_cli("run-model", str(tmp_path / "broken.onnx"), str(tmp_path / "a.wav"))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and missing in lines[0] and "cannot load it" in lines[0]
