"""``paretone pareto``: a study's feasible front as rows, plots and the hypervolume history."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from paretone._io import write_atomic
from paretone.compress import Recipe, summarize_recipe
from paretone.errors import ConfigError
from paretone.models import load_model
from paretone.search._front import Candidate, candidates, hypervolume_history, load_study, pareto_candidates
from paretone.search._plot import ParetoPlot, Reference, write_html, write_png

PLOT_PNG, PLOT_HTML, HISTORY_CSV = "pareto.png", "pareto.html", "hypervolume.csv"
REFERENCE_NAMES = {"teacher_fp32": "teacher fp32", "teacher_quantize_dynamic": "quantize_dynamic(teacher)"}


@dataclass(frozen=True)
class ParetoReport:
    study: str
    budget_ms: float | None
    pool: list[Candidate]  # every fine-tuned trial
    front: list[Candidate]  # feasible Pareto front, by predicted latency
    summaries: dict[int, str]  # trial -> recipe in a few words
    history: list[tuple[int, float]]
    files: dict[str, Path]


def _references(attrs: dict, teacher_dir: Path, pick_report: Path | None) -> list[Reference]:
    refs = []
    metrics_path = teacher_dir / "metrics.json"
    predicted = attrs.get("teacher_predicted_latency_ms")
    if predicted and metrics_path.is_file():
        accuracy = json.loads(metrics_path.read_text(encoding="utf-8")).get("accuracy", {}).get("validation")
        if accuracy is not None:
            refs.append(Reference("teacher (predicted)", float(predicted), float(accuracy), measured=False))
    if pick_report is not None and pick_report.is_file():
        models = json.loads(pick_report.read_text(encoding="utf-8")).get("models", {})
        names = {**REFERENCE_NAMES, "picked": "picked"}
        for key, row in models.items():
            label = f"{names.get(key, key)} (measured, test acc.)"
            refs.append(Reference(label, row["measured_latency_ms"], row["test_accuracy"], measured=True))
    return refs


def pareto_report(
    study_name: str,
    storage: str,
    out_dir: str | os.PathLike[str],
    *,
    pick_report: Path | None = None,
) -> ParetoReport:
    """Read the study, write pareto.png, pareto.html and hypervolume.csv to ``out_dir``."""
    study = load_study(study_name, storage)
    attrs = study.user_attrs
    if "paretone" not in attrs:
        raise ConfigError(f"study {study_name!r} was not written by `paretone search`")
    pool = candidates(study)
    front = pareto_candidates([c for c in pool if c.feasible])
    budget_ms = attrs.get("budget", {}).get("latency_ms")
    teacher_dir = Path(attrs["paretone"]["teacher"])
    structure = load_model(teacher_dir).model.structure()
    summaries = {c.trial: summarize_recipe(Recipe.from_dict(c.recipe), structure) for c in pool}
    history = hypervolume_history([c for c in pool if c.feasible], budget_ms) if budget_ms else []
    plot = ParetoPlot(
        pool, front, budget_ms, _references(attrs, teacher_dir, pick_report), summaries, history
    )
    out = Path(out_dir)
    files = {
        "png": write_png(plot, out / PLOT_PNG),
        "html": write_html(plot, out / PLOT_HTML, title=f"paretone study {study_name}"),
    }
    csv = "trial,hypervolume\n" + "".join(f"{t},{v:.6f}\n" for t, v in history)
    write_atomic(out / HISTORY_CSV, lambda tmp: tmp.write_text(csv, encoding="utf-8"))
    files["hypervolume"] = out / HISTORY_CSV
    return ParetoReport(study_name, budget_ms, pool, front, summaries, history, files)
