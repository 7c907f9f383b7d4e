"""From a finished study to a deployable model: choose under a budget, export, measure, verify.

The choice uses the search's predictions; the promise rests on a measurement. The chosen model is
exported with real kernels and timed on this machine in a fresh process, interleaved with the fp32
teacher and ``quantize_dynamic(teacher)``. A model measured over the budget is never shipped: it is
set aside under ``rejected/`` with its figures and the next candidate is tried.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from paretone._io import write_atomic, write_json
from paretone._outputs import OutputFolder
from paretone._version import __version__
from paretone.compress import (
    Recipe,
    export_compressed,
    load_student,
    quantize_dynamic_baseline,
)
from paretone.errors import ConfigError
from paretone.evaluators import TrialEvaluator
from paretone.models import count_complexity, export_onnx, family_of
from paretone.runtime import (
    INPUT_NAME,
    STREAM_INPUT,
    LatencyMeasurement,
    ModelMetadata,
    chunk_samples,
    fingerprint,
    make_session,
    measure_latencies_isolated,
    measure_peak_bytes,
    measure_session_peak_bytes,
    run_logits,
    stamp_metadata,
    zero_state,
)
from paretone.search import Candidate
from paretone.ship._card import model_card
from paretone.ship._mobile import FIXED_FILE, ORT_FILE, MobileExport, mobile_exports
from paretone.ship._report import (
    PICKED,
    TEACHER_FP32,
    TEACHER_INT8,
    TEACHER_INT8_CAREFUL,
    Attempt,
    FrontMember,
    MeasuredModel,
    PickReport,
    PredictedNow,
)
from paretone.ship._select import PickSettings, Selection, select
from paretone.ship._stream import stream_facts
from paretone.training import ONNX_FILE

MODEL_FILE, CARD_FILE, REPORT_FILE, RECIPE_JSON = "model.onnx", "MODEL_CARD.md", "pick.json", "recipe.json"
CLIP_FILE = "model-clip.onnx"  # a streaming pick's clip model (whole clips in, clip logits out)
STUDENT, CANDIDATES, REJECTED, BASELINES = "student", "candidates", "rejected", "baselines"
PICK_ENTRIES = (
    MODEL_FILE, CLIP_FILE, FIXED_FILE, ORT_FILE, CARD_FILE, REPORT_FILE, RECIPE_JSON, STUDENT, CANDIDATES,
    REJECTED, BASELINES,
)  # fmt: skip
TEACHER_INT8_FILE = "teacher-quantize-dynamic.onnx"
TEACHER_INT8_CAREFUL_FILE = "teacher-quantize-dynamic-without-front-end.onnx"
Say = Callable[[str], None]  # one line of progress for the user


class OverBudgetError(ConfigError):
    """Every candidate tried measured over the budget; nothing was shipped."""


def claim_pick_folder(settings: PickSettings, teacher: Path) -> OutputFolder:
    return OutputFolder.claim(
        settings.out, command="pick", entries=PICK_ENTRIES, overwrite=settings.overwrite, inputs=(teacher,)
    )


def _test(
    path: Path, evaluator: TrialEvaluator, threads: int, decision: tuple[float, ...] | None
) -> tuple[float, dict[str, Any]]:
    """The task's metric of the ONNX file at ``path`` on the test split, and its other report fields."""
    task, test = evaluator.context.task, evaluator.context.sets.test
    logits = torch.from_numpy(run_logits(path, test.waveforms.numpy(), threads=threads))
    report = task.report(logits, test.targets, decision)
    return task.score(logits, test.targets), {k: v for k, v in report.items() if k != task.metric}


def _decision(path: Path, evaluator: TrialEvaluator, threads: int) -> tuple[float, ...] | None:
    """The decision rule of the ONNX file at ``path``, fitted on the validation split."""
    task, validation = evaluator.context.task, evaluator.context.sets.validation
    logits = torch.from_numpy(run_logits(path, validation.waveforms.numpy(), threads=threads))
    return task.calibrate_decision(logits, validation.targets)


def _student(
    candidate: Candidate, settings: PickSettings, evaluator: TrialEvaluator, folder: Path
) -> float | None:
    """Put the candidate's fine-tuned student in ``folder``: its trial's weights, or
    ``final_epochs`` of new tuning; the validation score of the weights shipped."""
    if settings.final_epochs:
        return evaluator.fine_tune(candidate.recipe, epochs=settings.final_epochs, out_dir=folder).score
    if candidate.student is None or not candidate.student.is_dir():
        raise ConfigError(
            f"trial {candidate.trial}: its weights are missing ({candidate.student}); "
            "pass --final-epochs N to fine-tune it anew"
        )
    shutil.copytree(candidate.student, folder, dirs_exist_ok=True)
    return candidate.score


def _mobile(
    student: Any,
    recipe: Recipe,
    out: Path,
    metadata: ModelMetadata,
    evaluator: TrialEvaluator,
    *,
    streams: bool,
) -> MobileExport:
    """The fixed-shape export (a stream's model is one already) and its ORT-format conversion."""
    test = evaluator.context.sets.test.waveforms[:1].numpy().astype(np.float32)
    if streams:
        fixed = out / MODEL_FILE
        session = make_session(fixed, 1)
        feeds = {**zero_state(session), STREAM_INPUT: test[:, : chunk_samples(session)]}
    else:
        fixed = out / FIXED_FILE
        calibration = evaluator.context.sets.train.waveforms[:64]
        export_compressed(student, recipe, fixed, calibration=calibration, batch=1)
        stamp_metadata(fixed, metadata)
        feeds = {INPUT_NAME: test}
    return mobile_exports(out / MODEL_FILE, fixed, out, feeds)


def pick(settings: PickSettings, *, progress: Say | None = None) -> PickReport:
    """Choose, export, measure, verify and document (see the module docstring); the report."""
    say = progress or (lambda _: None)
    started = time.perf_counter()
    selection = select(settings)
    teacher_dir = selection.info.teacher
    if not teacher_dir.is_dir():
        raise ConfigError(f"the study's teacher {teacher_dir} is gone; put it back where the study was run")
    out_folder = claim_pick_folder(settings, teacher_dir)

    say("loading the teacher and its data")
    evaluator = TrialEvaluator(teacher_dir, threads=max(1, os.cpu_count() or 1))
    teacher = evaluator.context.teacher
    teacher_onnx = teacher_dir / ONNX_FILE
    if not teacher_onnx.is_file():
        export_onnx(teacher, teacher_onnx)
    out = out_folder.begin()
    int8_onnx = quantize_dynamic_baseline(teacher_onnx, out / BASELINES / TEACHER_INT8_FILE)
    careful_onnx = quantize_dynamic_baseline(
        teacher_onnx, out / BASELINES / TEACHER_INT8_CAREFUL_FILE, exclude_front_end=True
    )
    baselines = {TEACHER_FP32: teacher_onnx, TEACHER_INT8: int8_onnx, TEACHER_INT8_CAREFUL: careful_onnx}
    chosen = _attempts(selection, settings, evaluator, out_folder, list(baselines.values()), say)
    candidate, folder, validation_score, deployment, measured, attempts = chosen
    loaded, recipe = load_student(folder / STUDENT)
    student = loaded.model
    chunk = selection.info.chunk_samples
    streams = (folder / CLIP_FILE).is_file()  # exported chunk by chunk, beside its clip model

    say("test scores and peak memory of the model and its baselines")
    fe = student.config.front_end
    clip_file = CLIP_FILE if streams else MODEL_FILE
    decision = _decision(folder / clip_file, evaluator, settings.threads)
    metadata = ModelMetadata(
        evaluator.context.labels, fe.sample_rate, fe.clip_samples, __version__, recipe.to_dict(),
        evaluator.context.task.name, decision,
    )  # fmt: skip
    # stamped before they move into place: never a model without labels
    stamp_metadata(folder / clip_file, metadata)
    if streams:
        stamp_metadata(folder / MODEL_FILE, replace(metadata, chunk_samples=chunk, hop_samples=fe.hop_length))
    out_folder.remove(STUDENT)
    (folder / STUDENT).replace(out / STUDENT)
    for name in {MODEL_FILE, clip_file}:
        (folder / name).replace(out / name)
    out_folder.remove(CANDIDATES)
    attempts[-1] = Attempt(**{**asdict(attempts[-1]), "folder": str(out)})
    write_json(out / RECIPE_JSON, recipe.to_dict())
    streaming = None
    if chunk is not None:
        say("running it on a stream of test clips")
        streaming = stream_facts(
            out / MODEL_FILE, out / clip_file, evaluator.context.sets.test.waveforms.numpy(),
            sample_rate=fe.sample_rate, hop_samples=fe.hop_length, chunk_samples=chunk, streams=streams,
            threads=settings.threads,
        )  # fmt: skip
    say("fixed-shape and ORT-format exports for mobile runtimes, and their check")
    mobile = _mobile(student, recipe, out, metadata, evaluator, streams=streams)
    paths = {PICKED: out / MODEL_FILE, **baselines}  # in the order they were measured
    scored = {**paths, PICKED: out / clip_file}  # test scores: whole clips
    student_c, teacher_c = count_complexity(student), count_complexity(teacher)
    sizes = {PICKED: student_c, TEACHER_FP32: teacher_c}
    session_bytes = measure_session_peak_bytes(threads=settings.threads)
    teacher_decision = _decision(teacher_onnx, evaluator, settings.threads)
    models = []
    for (name, path), latency in zip(paths.items(), measured, strict=True):
        size = sizes.get(name)
        score, details = _test(
            scored[name], evaluator, settings.threads, decision if name == PICKED else teacher_decision
        )
        models.append(
            MeasuredModel(
                name=name,
                onnx=str(path),
                test_score=score,
                test_report=details,
                timing=latency,
                file_bytes=path.stat().st_size,
                # beyond an empty session, as the device profile predicts it
                peak_bytes=max(measure_peak_bytes(path, threads=settings.threads) - session_bytes, 0),
                macs=None if size is None else size.macs,
                params=None if size is None else size.params,
            )
        )
    structure = teacher.structure()
    report = PickReport(
        study=settings.study,
        storage=settings.storage,
        teacher=str(teacher_dir),
        task=evaluator.context.task.name,
        metric=evaluator.context.task.metric,
        split=evaluator.context.splits.name,
        test_clips=len(evaluator.context.sets.test),
        labels=evaluator.context.labels,
        sample_rate=fe.sample_rate,
        clip_samples=fe.clip_samples,
        data=evaluator.context.data_info,
        budget=selection.budget.to_dict(),
        limit_ms=attempts[-1].limit_ms,
        trial=candidate.trial,
        validation_score=validation_score,
        final_epochs=settings.final_epochs,
        predicted_latency_ms=candidate.latency_ms,
        predicted_peak_bytes=candidate.peak_bytes,
        predicted_model_bytes=candidate.model_bytes,
        predicted_on=selection.info.device,
        measured_on=fingerprint(settings.threads),
        empty_session_peak_bytes=session_bytes,
        models=tuple(models),
        recipe=recipe.to_dict(),
        recipe_in_words=tuple(recipe.describe(recipe.base_structure(teacher.config))),
        layers={d.layer: d.format.name for d in deployment},
        teacher_layer_formats=Recipe().layer_formats(structure),
        attempts=tuple(attempts),
        front=tuple(
            FrontMember(c.trial, c.score, c.latency_ms, c.peak_bytes, c.model_bytes, c.macs, c.params)
            for c in selection.front
        ),
        seconds=round(time.perf_counter() - started, 1),
        decision=decision,
        streaming=streaming,
        mobile=mobile,
        predicted_now=_predict_now(settings, selection, recipe, teacher.config),
    )
    write_json(out / REPORT_FILE, report.to_dict())
    card = model_card(report)
    write_atomic(out / CARD_FILE, lambda tmp: tmp.write_text(card, encoding="utf-8"))
    return report


def _predict_now(
    settings: PickSettings, selection: Selection, recipe: Recipe, teacher_config: Any
) -> PredictedNow | None:
    """The shipped recipe predicted with a speed probe taken now; None unless the study's device
    profile is this machine's and holds a probe (a kit-imported device cannot be probed from here)."""
    from paretone.hw_models import DeviceProfile, LatencyModel, probe_speed, profile_path, unprobeable_reason

    path = profile_path(settings.profile_dir, selection.info.device)
    if not path.is_file():
        return None
    profile = DeviceProfile.load(path)
    if unprobeable_reason(profile) is not None:
        return None
    speed = probe_speed(profile, path.parent)
    kernels = recipe.kernels(teacher_config, chunk_samples=selection.info.chunk_samples)
    prediction = LatencyModel(profile).predict(kernels, speed=speed)
    if not prediction.complete:  # the profile no longer covers it: say nothing rather than a part
        return None
    return PredictedNow(prediction.latency_ms, prediction.interval_ms, speed.overall, speed.seconds)


def _attempts(
    selection: Selection,
    settings: PickSettings,
    evaluator: TrialEvaluator,
    out_folder: OutputFolder,
    baselines: list[Path],
    say: Say,
) -> tuple[Candidate, Path, float | None, Any, list[LatencyMeasurement], list[Attempt]]:
    """Export and measure candidates, best first, until one is measured within the limit."""
    out, attempts = out_folder.path, []
    for candidate in selection.fitting[: settings.attempts]:
        folder = out / CANDIDATES / f"trial-{candidate.trial:05d}"
        say(f"trial {candidate.trial}: {'fine-tuning, ' if settings.final_epochs else ''}exporting")
        validation_score = _student(candidate, settings, evaluator, folder / STUDENT)
        loaded, recipe = load_student(folder / STUDENT)
        onnx_path = folder / MODEL_FILE
        calibration = evaluator.context.sets.train.waveforms[:64]
        chunk = selection.info.chunk_samples
        if chunk is not None and family_of(loaded.model.config).can_stream:  # the stream ships
            export_compressed(loaded.model, recipe, folder / CLIP_FILE, calibration=calibration)
            deployment = export_compressed(
                loaded.model, recipe, onnx_path, calibration=calibration, chunk_samples=chunk
            )
        else:
            deployment = export_compressed(loaded.model, recipe, onnx_path, calibration=calibration)
        say(f"trial {candidate.trial}: measuring beside the fp32 teacher and its quantize_dynamic baselines")
        measured = measure_latencies_isolated(
            [onnx_path, *baselines], threads=settings.threads, passes=settings.passes, runs=settings.runs
        )
        limit_ms = selection.budget.limit_beside(measured[1].latency_ms)
        # per chunk of a stream, the budget holds the 95th percentile; per clip, the median
        value = measured[0].p95_ms if chunk is not None else measured[0].latency_ms
        ok = value <= limit_ms
        attempts.append(Attempt(candidate.trial, candidate.latency_ms, value, limit_ms, ok, str(folder)))
        if ok:
            return candidate, folder, validation_score, deployment, measured, attempts
        rejected = out / REJECTED / folder.name
        shutil.rmtree(rejected, ignore_errors=True)  # inside paretone's own rejected/ folder
        rejected.parent.mkdir(parents=True, exist_ok=True)
        folder.replace(rejected)
        attempts[-1] = Attempt(**{**asdict(attempts[-1]), "folder": str(rejected)})
        write_json(
            rejected / "why.json",
            {
                "limit_ms": limit_ms,
                "limit_fraction": selection.budget.given.fraction,
                "teacher_latency_ms": measured[1].latency_ms,
                **measured[0].to_dict(),
            },
        )
        what = "p95 per chunk" if chunk is not None else "median"
        say(
            f"trial {candidate.trial}: measured {value:.3f} ms ({what}) > limit {limit_ms:.3f} ms; "
            "set aside, trying the next candidate"
        )
    tried = "; ".join(f"trial {a.trial} measured {a.measured_latency_ms:.3f} ms" for a in attempts)
    fraction = selection.budget.given.fraction
    limit = (
        f"{attempts[-1].limit_ms:.3f} ms"
        if fraction is None
        else f"{fraction:g} x the teacher measured beside them"
    )
    raise OverBudgetError(
        f"no model shipped: {tried}, over the limit ({limit}; kept under {out / REJECTED}). The device "
        "profile may have drifted: run `paretone calibrate --validate`, raise the limit, or pass "
        "--attempts N to try more candidates"
    )
