"""From a finished study to a deployable model: choose under a budget, export, measure, verify.

The choice uses the search's predictions; the promise rests on a measurement. The chosen model is
exported with real kernels and timed on this machine in a fresh process, interleaved with the fp32
teacher and ``quantize_dynamic(teacher)``. A model measured over the budget is never shipped: it is
set aside under ``rejected/`` with its figures and the next candidate is tried.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from paretone import __version__
from paretone._io import write_atomic, write_json
from paretone.compress import (
    Recipe,
    describe_recipe,
    export_compressed,
    export_onnx,
    layer_formats,
    load_student,
    onnx_logits,
    quantize_dynamic_baseline,
    stamp_metadata,
)
from paretone.errors import ConfigError
from paretone.evaluators import TrialEvaluator
from paretone.hw_models import (
    fingerprint,
    measure_latencies_isolated,
    measure_peak_bytes,
    measure_session_peak_bytes,
)
from paretone.models import LoadedModel, count_complexity
from paretone.search._card import model_card
from paretone.search._front import Candidate, candidates, load_study, pareto_candidates, within

MODEL_FILE, CARD_FILE, REPORT_FILE = "model.onnx", "MODEL_CARD.md", "pick.json"
TEACHER_INT8 = "teacher-quantize-dynamic.onnx"
Say = Callable[[str], None]  # one line of progress for the user


class OverBudgetError(ConfigError):
    """Every candidate tried measured over the budget; nothing was shipped."""


@dataclass(frozen=True)
class PickSettings:
    study: str
    storage: str
    latency_budget_ms: float | None  # measured ms; None (and no fraction): the study's own budget
    out: Path
    # a fraction of the teacher's latency, measured beside each candidate in the same process
    latency_budget_fraction: float | None = None
    memory_budget_mb: float | None = None
    size_budget_mb: float | None = None  # predicted ONNX file size
    final_epochs: int = 0  # 0: ship the trial's own fine-tuned weights
    attempts: int = 3  # candidates to export and measure before giving up
    threads: int = 1
    passes: int = 7
    runs: int = 50

    def __post_init__(self) -> None:
        budget = self.latency_budget_ms
        if budget is not None and not (
            isinstance(budget, int | float) and math.isfinite(budget) and budget > 0
        ):
            raise ConfigError(f"--latency-budget-ms must be a positive number of milliseconds, got {budget}")
        fraction = self.latency_budget_fraction
        if fraction is not None and not (math.isfinite(fraction) and 0 < fraction <= 1):
            raise ConfigError(f"--latency-budget-fraction must be in (0, 1], got {fraction}")
        if budget is not None and fraction is not None:
            raise ConfigError("give --latency-budget-ms or --latency-budget-fraction, not both")
        for flag, value in (
            ("--memory-budget-mb", self.memory_budget_mb),
            ("--size-budget-mb", self.size_budget_mb),
        ):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{flag} must be a positive number of megabytes, got {value}")
        if self.final_epochs < 0 or self.attempts < 1 or self.threads < 1 or self.passes < 1 or self.runs < 1:
            raise ConfigError("--final-epochs must be >= 0; --attempts, --threads, passes and runs >= 1")


@dataclass
class Attempt:
    trial: int
    predicted_latency_ms: float
    measured_latency_ms: float
    within_budget: bool
    folder: str


@dataclass(frozen=True)
class ResolvedBudget:
    """``choose_ms``: predicted latency candidates must fit; then ``limit_ms`` (absolute) or
    ``fraction`` of the teacher measured beside each candidate, which moves with the machine's
    slow and fast phases as the candidate does."""

    choose_ms: float
    limit_ms: float | None
    fraction: float | None

    def __post_init__(self) -> None:
        if (self.limit_ms is None) == (self.fraction is None):
            raise ValueError("give exactly one of limit_ms and fraction")

    def limit_beside(self, teacher_measured_ms: float) -> float:
        """The measured latency a candidate must not exceed, the teacher timed in the same run."""
        if self.fraction is not None:
            return self.fraction * teacher_measured_ms
        return float(self.limit_ms)  # type: ignore[arg-type]  # set when fraction is None


def resolve_budget(settings: PickSettings, attrs: dict[str, Any]) -> ResolvedBudget:
    """The given budget, else the one the study was searched with (a fraction stays a fraction)."""
    if settings.latency_budget_ms is not None:
        return ResolvedBudget(settings.latency_budget_ms, settings.latency_budget_ms, None)
    searched = attrs.get("budget", {})
    fraction = settings.latency_budget_fraction or searched.get("latency_fraction")
    if fraction is None:
        if searched.get("latency_ms") is None:
            raise ConfigError(f"study {settings.study!r} has no latency budget; pass --latency-budget-ms")
        return ResolvedBudget(float(searched["latency_ms"]), float(searched["latency_ms"]), None)
    teacher_ms = attrs.get("teacher_predicted_latency_ms")
    if teacher_ms is None:
        raise ConfigError(f"study {settings.study!r} lacks the teacher's latency; pass --latency-budget-ms")
    return ResolvedBudget(float(fraction) * float(teacher_ms), None, float(fraction))


def choices(
    settings: PickSettings,
) -> tuple[list[Candidate], list[Candidate], dict[str, Any], ResolvedBudget]:
    """(front members predicted within the budget, best first; the whole front; study attributes;
    the latency budget, the study's own if none was given).

    ConfigError naming the nearest options when no front member fits.
    """
    study = load_study(settings.study, settings.storage)
    budget = resolve_budget(settings, study.user_attrs)
    pool = candidates(study)
    if not pool:
        raise ConfigError(
            f"study {settings.study!r} has no fine-tuned trial yet; run or resume `paretone search`"
        )
    front = pareto_candidates(pool)
    fitting = within(
        front,
        latency_ms=budget.choose_ms,
        memory_mb=settings.memory_budget_mb,
        size_mb=settings.size_budget_mb,
    )
    if not fitting:
        nearest = ", ".join(
            f"trial {c.trial}: {c.latency_ms:.3f} ms, {c.memory_bytes / 1e6:.1f} MB memory, "
            f"{c.model_bytes / 1e6:.2f} MB file, {c.accuracy:.1%}"
            for c in front[:3]
        )
        raise ConfigError(
            f"no Pareto-optimal model of study {settings.study!r} is predicted within "
            f"{budget.choose_ms:.3f} ms"
            + (f", {settings.memory_budget_mb} MB of memory" if settings.memory_budget_mb else "")
            + (f", a {settings.size_budget_mb} MB file" if settings.size_budget_mb else "")
            + f"; the fastest are {nearest}. Raise the budget, or search at this one "
            "(`paretone search --latency-budget-ms ...` with a new --study)"
        )
    return fitting, front, dict(study.user_attrs), budget


def _accuracy(path: Path, evaluator: TrialEvaluator, threads: int) -> float:
    test = evaluator.context.sets.test
    logits = onnx_logits(path, test.waveforms, threads=threads)
    return (logits.argmax(1) == test.targets).float().mean().item()


def _student(
    candidate: Candidate, settings: PickSettings, evaluator: TrialEvaluator, folder: Path
) -> tuple[LoadedModel, Recipe, dict[str, Any]]:
    """The candidate's fine-tuned student: its trial's weights, or ``final_epochs`` of new tuning."""
    if settings.final_epochs:
        metrics = evaluator.fine_tune(candidate.recipe, epochs=settings.final_epochs, out_dir=folder)
    else:
        if not candidate.artifacts or not Path(candidate.artifacts).is_dir():
            raise ConfigError(
                f"trial {candidate.trial}: its weights are missing ({candidate.artifacts}); "
                "pass --final-epochs N to fine-tune it anew"
            )
        shutil.copytree(candidate.artifacts, folder, dirs_exist_ok=True)
        metrics = {"accuracy": candidate.accuracy}
    loaded, recipe = load_student(folder)
    return loaded, recipe, metrics


def pick(settings: PickSettings, *, progress: Say | None = None) -> dict[str, Any]:
    """Choose, export, measure, verify and document (see the module docstring); the report."""
    say = progress or (lambda _: None)
    started = time.perf_counter()
    fitting, front, attrs, budget = choices(settings)
    fraction = budget.fraction
    teacher_dir = Path(attrs["paretone"]["teacher"])
    out = settings.out
    out.mkdir(parents=True, exist_ok=True)

    say("loading the teacher and its data")
    evaluator = TrialEvaluator(teacher_dir, threads=max(1, os.cpu_count() or 1))
    teacher = evaluator.context.teacher
    teacher_onnx = teacher_dir / "model.onnx"
    if not teacher_onnx.is_file():
        export_onnx(teacher, teacher_onnx)
    baselines = out / "baselines"
    int8_onnx = quantize_dynamic_baseline(teacher_onnx, baselines / TEACHER_INT8)

    attempts: list[Attempt] = []
    chosen = None
    for candidate in fitting[: settings.attempts]:
        folder = out / "candidates" / f"trial-{candidate.trial:05d}"
        say(f"trial {candidate.trial}: {'fine-tuning, ' if settings.final_epochs else ''}exporting")
        loaded, recipe, tuned = _student(candidate, settings, evaluator, folder / "student")
        student = loaded.model
        onnx_path = folder / MODEL_FILE
        deployment = export_compressed(
            student, recipe, onnx_path, calibration=evaluator.context.sets.train.waveforms[:64]
        )
        say(f"trial {candidate.trial}: measuring beside the fp32 teacher and quantize_dynamic(teacher)")
        measured = measure_latencies_isolated(
            [onnx_path, teacher_onnx, int8_onnx],
            threads=settings.threads,
            passes=settings.passes,
            runs=settings.runs,
        )
        budget_ms = budget.limit_beside(measured[1].latency_ms)
        ok = measured[0].latency_ms <= budget_ms
        attempts.append(
            Attempt(candidate.trial, candidate.latency_ms, measured[0].latency_ms, ok, str(folder))
        )
        if ok:
            chosen = (candidate, folder, student, recipe, tuned, deployment, measured)
            break
        rejected = out / "rejected" / folder.name
        shutil.rmtree(rejected, ignore_errors=True)
        rejected.parent.mkdir(parents=True, exist_ok=True)
        folder.replace(rejected)
        attempts[-1].folder = str(rejected)
        write_json(
            rejected / "why.json",
            {
                "budget_ms": budget_ms,
                "budget_fraction": fraction,
                "teacher_latency_ms": measured[1].latency_ms,
                **measured[0].to_dict(),
            },
        )
        say(
            f"trial {candidate.trial}: measured {measured[0].latency_ms:.3f} ms > budget "
            f"{budget_ms:.3f} ms; set aside, trying the next candidate"
        )
    if chosen is None:
        tried = "; ".join(f"trial {a.trial} measured {a.measured_latency_ms:.3f} ms" for a in attempts)
        limit = (
            f"{budget_ms:.3f} ms" if fraction is None else f"{fraction:g} x the teacher measured beside them"
        )
        raise OverBudgetError(
            f"no model shipped: {tried}, over the budget ({limit}; kept under "
            f"{out / 'rejected'}). The device profile may have drifted: run `paretone calibrate --validate`, "
            "raise the budget, or pass --attempts N to try more candidates"
        )

    candidate, folder, student, recipe, tuned, deployment, measured = chosen
    say("test accuracy and peak memory of the model and its baselines")
    fe = student.config.front_end
    stamp_metadata(  # before it moves into place: a model.onnx without its labels never exists
        folder / MODEL_FILE,
        {
            "paretone.labels": json.dumps(list(evaluator.context.labels)),
            "paretone.sample_rate": str(fe.sample_rate),
            "paretone.clip_samples": str(fe.clip_samples),
            "paretone.version": __version__,
            "paretone.recipe": json.dumps(recipe.to_dict()),
        },
    )
    model_path = out / MODEL_FILE
    shutil.rmtree(out / "student", ignore_errors=True)
    (folder / "student").replace(out / "student")
    (folder / MODEL_FILE).replace(model_path)
    shutil.rmtree(out / "candidates", ignore_errors=True)
    attempts[-1].folder = str(out)
    write_json(out / "recipe.json", recipe.to_dict())
    models = {"picked": model_path, "teacher_fp32": teacher_onnx, "teacher_quantize_dynamic": int8_onnx}
    student_c, teacher_c = count_complexity(student), count_complexity(teacher)
    rows = {}
    session_bytes = measure_session_peak_bytes(threads=settings.threads)
    for (name, path), latency in zip(models.items(), measured, strict=True):
        rows[name] = {
            "onnx": str(path),
            "test_accuracy": _accuracy(path, evaluator, settings.threads),
            "measured_latency_ms": latency.latency_ms,
            "latency": latency.to_dict(),
            "file_bytes": path.stat().st_size,
            # beyond an empty session, as the device profile predicts it
            "peak_bytes": max(measure_peak_bytes(path, threads=settings.threads) - session_bytes, 0),
        }
    rows["picked"] |= {"macs": student_c.macs, "params": student_c.params}
    rows["teacher_fp32"] |= {"macs": teacher_c.macs, "params": teacher_c.params}
    report = {
        "format": "paretone.pick/1",
        "paretone_version": __version__,
        "study": settings.study,
        "storage": settings.storage,
        "teacher": str(teacher_dir),
        "split": evaluator.context.splits.name,
        "test_clips": len(evaluator.context.sets.test),
        "labels": list(evaluator.context.labels),
        "input": {"sample_rate": fe.sample_rate, "clip_samples": fe.clip_samples},
        "data": evaluator.context.data_info,
        "budget": {
            "latency_ms": budget_ms,
            "latency_fraction_of_teacher_measured": fraction,
            "predicted_ms_used_to_choose": budget.choose_ms,
            "memory_mb": settings.memory_budget_mb,
            "size_mb": settings.size_budget_mb,
        },
        "search_budget": attrs.get("budget", {}),
        "trial": candidate.trial,
        "validation_accuracy": tuned.get("accuracy"),
        "final_epochs": settings.final_epochs,
        "predicted": {
            "latency_ms": candidate.latency_ms,
            "memory_bytes": candidate.memory_bytes,
            "model_bytes": candidate.model_bytes,
            "device": attrs.get("device"),
        },
        "measured_on": fingerprint(settings.threads),
        "empty_session_peak_bytes": session_bytes,
        "models": rows,
        "recipe": recipe.to_dict(),
        "recipe_in_words": describe_recipe(recipe, teacher.structure()),
        "layers": {d.layer: d.format.name for d in deployment},
        "teacher_layer_formats": layer_formats(Recipe(), teacher.structure()),
        "attempts": [asdict(a) for a in attempts],
        "front": [{k: v for k, v in asdict(c).items() if k not in ("recipe", "artifacts")} for c in front],
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_json(out / REPORT_FILE, report)
    card = model_card(report)
    write_atomic(out / CARD_FILE, lambda tmp: tmp.write_text(card, encoding="utf-8"))
    return report
