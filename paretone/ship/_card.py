"""The model card: what was shipped, how well it works, how fast it measured, and where it may fail."""

from __future__ import annotations

import json
import math
from pathlib import Path

from paretone.runtime import MEMORY_PROCESSES
from paretone.ship._report import (
    MODEL_NAMES,
    PICKED,
    TEACHER_FP32,
    TEACHER_INT8,
    TEACHER_INT8_CAREFUL,
    PickReport,
)


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value / 1e6:.2f}"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _interval(score: float, n: int) -> str:
    """Half-width of a 95% normal interval, so readers see how much a point of the metric means."""
    if n <= 0:
        return ""
    return f" ± {1.96 * math.sqrt(max(score * (1 - score), 1 / n) / n):.1%}"


def _outputs(report: PickReport) -> str:
    labels = ", ".join(report.labels)
    if report.decision is None:
        return f"Output `logits` over the classes {labels} (softmax; also in the model's metadata)."
    cuts = ", ".join(f"{label} {t:.2f}" for label, t in zip(report.labels, report.decision, strict=True))
    return (
        f"Output `logits`, one per label ({labels}), each through its own sigmoid: a label is present "
        f"when its probability reaches its threshold, tuned for F1 on the validation split and stored "
        f"in the model's metadata ({cuts})."
    )


def _decisions(report: PickReport) -> list[str]:
    """The F1 of each model at its thresholds, for tasks that decide by threshold."""
    rows = [m for m in report.models if "f1_micro" in m.test_report]
    if not rows:
        return []
    return [
        "",
        "| model | test F1 micro | test F1 macro |",
        "|---|---|---|",
        *[
            f"| {MODEL_NAMES[m.name]} | {m.test_report['f1_micro']:.1%} | {m.test_report['f1_macro']:.1%} |"
            for m in rows
        ],
        "",
        "F1 at each model's own per-class thresholds, tuned on the validation split.",
    ]


def _streaming(report: PickReport) -> list[str]:
    facts = report.streaming
    if facts is None:
        return []
    if facts.mode == "stream":
        how = (
            f"It streams: `model.onnx` takes one chunk of {facts.chunk_ms:g} ms ({facts.chunk_samples} "
            f"samples) and its state ({facts.state_bytes:,} bytes: the STFT overlap and the recurrent "
            "states, as explicit inputs and outputs named `<state>` and `<state>_out`, zeros at the start) "
            "and returns per-frame logits; `model-clip.onnx` is the same model on whole clips. Streamed "
            "outputs pooled over a clip "
            f"differ from the clip model's by at most {facts.stream_vs_clip_max_abs_diff:.2e}."
        )
    else:
        how = (
            f"It cannot stream: on a stream it classifies a window of one clip every {facts.chunk_ms:g} ms "
            f"chunk (`paretone run-model --stream`)."
        )
    return [
        "## On a stream",
        "",
        how,
        "",
        f"Per chunk: p50 {facts.p50_ms:.3f} ms, p95 {facts.p95_ms:.3f} ms (the budget holds the p95: limit "
        f"{report.limit_ms:.3f} ms); real-time factor {facts.real_time_factor:.4f} over "
        f"{facts.audio_seconds:.0f} s "
        f"of test clips played as one stream; algorithmic delay {facts.algorithmic_delay_ms:.0f} ms "
        "(audio the model waits for before it can answer about a sample).",
        "",
    ]


def _mobile(report: PickReport) -> list[str]:
    mobile = report.mobile
    if mobile is None:
        return []
    rows = []
    for v in mobile.verdicts:
        well = "yes" if v.recommended else "no"
        rows.append(f"| {v.provider} | {v.partitions} | {v.nodes_supported}/{v.nodes} | {well} |")
    return [
        "## Mobile runtimes",
        "",
        f"`{Path(mobile.fixed_onnx).name}` (fixed shapes: batch 1) and `{Path(mobile.ort).name}` (ORT "
        "format, for ONNX Runtime Mobile) compute what `model.onnx` computes (max |difference| "
        f"{mobile.fixed_max_abs_diff:.1e} and {mobile.ort_max_abs_diff:.1e}). ONNX Runtime's usability "
        "checker on the fixed-shape export:",
        "",
        "| execution provider | partitions | nodes it takes | performs well as is |",
        "|---|---|---|---|",
        *rows,
        "",
    ]


def _predicted_now(report: PickReport) -> str:
    now = report.predicted_now
    if now is None:
        return ""
    low, high = now.interval_ms or (None, None)
    interval = "" if low is None else f", 95% interval {low:.3f}-{high:.3f}"
    return (
        f" At pick time a speed probe ({now.probe_seconds:.2f} s) found this machine at "
        f"{now.speed_factor:.2f}x its calibrated kernel times; corrected for that, the prediction is "
        f"{now.latency_ms:.3f} ms{interval} (measured {report.picked.measured_latency_ms:.3f} ms)."
    )


def _careful(report: PickReport, measured_ms: float) -> str:
    """The baseline a careful user would run (absent from reports written before it was measured)."""
    careful = next((m for m in report.models if m.name == TEACHER_INT8_CAREFUL), None)
    if careful is None:
        return ""
    return (
        f"; with the front-end excluded from `quantize_dynamic`, {careful.test_score:.1%} at "
        f"{careful.measured_latency_ms / measured_ms:.1f}x the picked model's latency"
    )


def model_card(report: PickReport) -> str:
    picked, teacher, int8 = report.model(PICKED), report.model(TEACHER_FP32), report.model(TEACHER_INT8)
    device, metric = report.measured_on, report.metric
    proportion = metric == "accuracy"  # a share of clips: the binomial interval applies
    tuning = (
        f"{report.final_epochs} final epochs" if report.final_epochs else "the search trial's own weights"
    )
    seconds = report.clip_samples / report.sample_rate
    tests = report.test_clips
    fraction = report.budget.get("given", {}).get("latency_fraction")
    share = "" if fraction is None else f", {fraction:.0%} of the teacher measured beside it"
    measured_ms = picked.measured_latency_ms
    speedup = teacher.measured_latency_ms / measured_ms
    size = picked.file_bytes / teacher.file_bytes
    lines = [
        f"# Model card: `{report.study}`, trial {report.trial}",
        "",
        f"Compressed by paretone {report.paretone_version} from the teacher `{report.teacher}`. "
        f"On this machine it measured **{measured_ms:.3f} ms** per clip (limit {report.limit_ms:.3f} ms"
        f"{share}; the search predicted {report.predicted_latency_ms:.3f} ms), **{speedup:.1f}x faster** "
        "than "
        f"the fp32 teacher and {int8.measured_latency_ms / measured_ms:.1f}x faster than "
        f"`quantize_dynamic(teacher)`, in a file **{size:.1%}** of the teacher's, at "
        f"**{picked.test_score:.1%}** test {metric} (teacher {teacher.test_score:.1%}, `quantize_dynamic` "
        f"{int8.test_score:.1%}{_careful(report, measured_ms)}).",
        "",
        "## Use",
        "",
        "```",
        "paretone run-model model.onnx clip.wav ...",
        "```",
        "",
        f"Input `waveform`: float32, shape (batch, {report.clip_samples}), mono at {report.sample_rate} Hz "
        f"(centre-cropped or zero-padded to that length). {_outputs(report)} The log-mel front-end is "
        "inside the model.",
        "",
        "## Results (same run, same machine, side by side)",
        "",
        f"| model | test {metric} | measured ms (p10-p90) | predicted ms | file MB | peak MB | MACs "
        "| params |",
        "|---|---|---|---|---|---|---|---|",
    ]
    predicted = {PICKED: f"{report.predicted_latency_ms:.3f}"}
    for row in report.models:
        t = row.timing
        lines.append(
            f"| {MODEL_NAMES[row.name]} | {row.test_score:.1%}"
            f"{_interval(row.test_score, tests) if proportion else ''} | "
            f"{t.latency_ms:.3f} ({t.p10_ms:.3f}-{t.p90_ms:.3f}) | {predicted.get(row.name, '-')} | "
            f"{_mb(row.file_bytes)} | {_mb(row.peak_bytes)} | {_count(row.macs)} | {_count(row.params)} |"
        )
    lines += _decisions(report)
    lines += [
        "",
        f"Latency: batch 1, {device['threads']} ONNX Runtime thread(s), median of the quietest of "
        f"{picked.timing.passes} interleaved passes ({picked.timing.repeats} runs in all), in a fresh "
        "process. Peak memory: resident-memory rise from loading and running the model beyond an empty "
        f"ONNX Runtime session (itself {_mb(report.empty_session_peak_bytes)} MB), mean of "
        f"{MEMORY_PROCESSES} fresh processes (it depends on the address-space layout the OS draws per "
        "process).",
        "",
        f"Device: {device['cpu']} ({', '.join(device['cpu_flags']) or 'no SIMD flags read'}), "
        f"{device['logical_cpus']} logical CPUs, {device['system']} {device['machine']}, "
        f"ONNX Runtime {device['onnxruntime']}. The prediction came from the device profile "
        f"`{report.predicted_on}`.{_predicted_now(report)}",
        "",
        "## Compression recipe",
        "",
        *[f"- {line}" for line in report.recipe_in_words],
        f"- Validation {metric} after fine-tuning: "
        + ("n/a" if report.validation_score is None else f"{report.validation_score:.1%}")
        + f" ({tuning}).",
        "",
        "<details><summary>Recipe JSON (recipe.json)</summary>",
        "",
        "```json",
        json.dumps(report.recipe, indent=2),
        "```",
        "",
        "</details>",
        "",
        "## Layers and their runtime formats",
        "",
        "| layer | format | teacher |",
        "|---|---|---|",
        *[
            f"| {layer} | {fmt} | {report.teacher_layer_formats.get(layer, '-')} |"
            for layer, fmt in report.layers.items()
        ],
        "",
    ]
    lines += _streaming(report) + _mobile(report)
    rejected = [a for a in report.attempts if not a.within_budget]
    if rejected:
        lines += [
            "## Candidates set aside",
            "",
            *[
                f"- trial {a.trial}: predicted {a.predicted_latency_ms:.3f} ms, measured "
                f"{a.measured_latency_ms:.3f} ms, over the limit of {a.limit_ms:.3f} ms "
                f"(kept in `{a.folder}`)"
                for a in rejected
            ],
            "",
        ]
    lines += [
        "## Known failure modes and limits",
        "",
        f"- Tuned and tested on `{report.data.get('root', 'the teacher data')}` (split `{report.split}`, "
        f"{tests} test clips: one clip is {1 / max(tests, 1):.1%}). Elsewhere its {metric} is unknown.",
        *(
            [
                "- The split is speaker-dependent: every test speaker was also heard in training. Expect "
                "lower accuracy on new voices (evaluate with a `speaker:NAME` split before relying on it)."
            ]
            if report.split in ("official", "hash")
            else []
        ),
        f"- Clips are cut or padded to {seconds:.2f} s; "
        "sound beyond that is not heard. Other sample rates are resampled by `run-model`, not by the model.",
        "- The latency holds for this CPU, ONNX Runtime version and thread count; other devices differ "
        "(calibrate them with `paretone calibrate --kit`). Low-bit kernels are the most device-dependent.",
        "- Quiet recordings of isolated sounds: no noise, far-field or overlapping-sound robustness was "
        "tested.",
        "",
    ]
    return "\n".join(lines)
