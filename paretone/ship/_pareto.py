"""``paretone pareto``: a study's feasible front as rows, plots and the hypervolume history."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from paretone._io import read_json, write_atomic
from paretone._outputs import OutputFolder
from paretone.compress import Recipe
from paretone.errors import ConfigError
from paretone.models import read_header
from paretone.search import (
    Candidate,
    StudyInfo,
    candidates,
    hypervolume_history,
    load_study,
    pareto_candidates,
    study_folder,
)
from paretone.ship._plot import ParetoPlot, Reference, write_html, write_png
from paretone.ship._report import MODEL_NAMES, PickReport
from paretone.tasks import task_named
from paretone.training import METRICS_FILE, score_of

PLOT_PNG, PLOT_HTML, HISTORY_CSV = "pareto.png", "pareto.html", "hypervolume.csv"


@dataclass(frozen=True)
class ParetoReport:
    study: str
    metric: str  # the task's metric (what ``Candidate.score`` is)
    budget_ms: float | None
    pool: list[Candidate]  # every fine-tuned trial
    front: list[Candidate]  # feasible Pareto front, by predicted latency
    summaries: dict[int, str]  # trial -> recipe in a few words
    history: list[tuple[int, float]]
    files: dict[str, Path]


def _references(info: StudyInfo, pick_report: Path | None) -> list[Reference]:
    refs = []
    metrics_path = info.teacher / METRICS_FILE
    if metrics_path.is_file():
        score = score_of(read_json(metrics_path, missing="", fix="re-train the teacher"), "validation")
        if score is not None:
            refs.append(
                Reference("teacher (predicted)", info.budget.teacher_latency_ms, float(score), measured=False)
            )
    if pick_report is not None and pick_report.is_file():
        report = PickReport.read(pick_report)
        for row in report.models:
            label = f"{MODEL_NAMES.get(row.name, row.name)} (measured, test)"
            refs.append(Reference(label, row.measured_latency_ms, row.test_score, measured=True))
    return refs


def pareto_report(
    study_name: str,
    storage: str,
    out_dir: str | os.PathLike[str],
    *,
    pick_report: Path | None = None,
) -> ParetoReport:
    """Read the study, write pareto.png, pareto.html and hypervolume.csv to ``out_dir`` (replacing
    only the files an earlier ``pareto`` wrote there)."""
    folder = OutputFolder.claim(
        out_dir, command="pareto", entries=(PLOT_PNG, PLOT_HTML, HISTORY_CSV), replace_own=True
    )
    study = load_study(study_name, storage)
    info = StudyInfo.read(study, study_folder(storage))
    task = task_named(info.task)
    pool = candidates(study, study_folder(storage))
    front = pareto_candidates([c for c in pool if c.feasible])
    budget_ms = info.budget.latency_ms
    if not info.teacher.is_dir():
        raise ConfigError(f"the study's teacher {info.teacher} is gone; put it back where the study was run")
    teacher_config = read_header(info.teacher)[0]
    recipes = {c.trial: Recipe.from_dict(c.recipe) for c in pool}
    summaries = {t: r.summary(r.base_structure(teacher_config)) for t, r in recipes.items()}
    history = hypervolume_history([c for c in pool if c.feasible], budget_ms)
    plot = ParetoPlot(pool, front, budget_ms, _references(info, pick_report), summaries, history, task.metric)
    out = folder.begin()
    files = {
        "png": write_png(plot, out / PLOT_PNG),
        "html": write_html(plot, out / PLOT_HTML, title=f"paretone study {study_name}"),
    }
    csv = "trial,hypervolume\n" + "".join(f"{t},{v:.6f}\n" for t, v in history)
    write_atomic(out / HISTORY_CSV, lambda tmp: tmp.write_text(csv, encoding="utf-8"))
    files["hypervolume"] = out / HISTORY_CSV
    return ParetoReport(study_name, task.metric, budget_ms, pool, front, summaries, history, files)
