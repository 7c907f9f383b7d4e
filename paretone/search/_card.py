"""The model card: what was shipped, how well it works, how fast it measured, and where it may fail."""

from __future__ import annotations

import json
import math
from typing import Any

NAMES = {
    "picked": "picked model",
    "teacher_fp32": "teacher, fp32",
    "teacher_quantize_dynamic": "teacher, `quantize_dynamic` int8",
}


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value / 1e6:.2f}"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _interval(accuracy: float, n: int) -> str:
    """Half-width of a 95% normal interval, so readers see how much a point of accuracy means."""
    if n <= 0:
        return ""
    return f" ± {1.96 * math.sqrt(max(accuracy * (1 - accuracy), 1 / n) / n):.1%}"


def model_card(report: dict[str, Any]) -> str:
    models = report["models"]
    picked, teacher, int8 = models["picked"], models["teacher_fp32"], models["teacher_quantize_dynamic"]
    device = report["measured_on"]
    epochs = report["final_epochs"]
    tuning = f"{epochs} final epochs" if epochs else "the search trial's own weights"
    seconds = report["input"]["clip_samples"] / report["input"]["sample_rate"]
    data = report.get("data", {})
    tests = report.get("test_clips", 0)
    budget_ms, predicted_ms = report["budget"]["latency_ms"], report["predicted"]["latency_ms"]
    fraction = report["budget"].get("latency_fraction_of_teacher_measured")
    share = "" if fraction is None else f", {fraction:.0%} of the teacher measured beside it"
    measured_ms = picked["measured_latency_ms"]
    speedup = teacher["measured_latency_ms"] / measured_ms
    size = picked["file_bytes"] / teacher["file_bytes"]
    lines = [
        f"# Model card: `{report['study']}`, trial {report['trial']}",
        "",
        f"Compressed by paretone {report['paretone_version']} from the teacher `{report['teacher']}`. "
        f"On this machine it measured **{measured_ms:.3f} ms** per clip (budget {budget_ms:.3f} ms"
        f"{share}; the search predicted {predicted_ms:.3f} ms), **{speedup:.1f}x faster** than the fp32 "
        "teacher and "
        f"{int8['measured_latency_ms'] / measured_ms:.1f}x faster than `quantize_dynamic(teacher)`, in a "
        f"file **{size:.1%}** of the teacher's, at **{picked['test_accuracy']:.1%}** test accuracy "
        f"(teacher {teacher['test_accuracy']:.1%}, `quantize_dynamic` {int8['test_accuracy']:.1%}).",
        "",
        "## Use",
        "",
        "```",
        "paretone run-model model.onnx clip.wav ...",
        "```",
        "",
        f"Input `waveform`: float32, shape (batch, {report['input']['clip_samples']}), mono at "
        f"{report['input']['sample_rate']} Hz (centre-cropped or zero-padded to that length). Output "
        f"`logits` over the classes {', '.join(report['labels'])} (also in the model's metadata). "
        "The log-mel front-end is inside the model.",
        "",
        "## Results (same run, same machine, side by side)",
        "",
        "| model | test accuracy | measured ms (p10-p90) | predicted ms | file MB | peak MB | MACs | params"
        " |",
        "|---|---|---|---|---|---|---|---|",
    ]
    predicted = {"picked": f"{report['predicted']['latency_ms']:.3f}"}
    for key, row in models.items():
        latency = row["latency"]
        lines.append(
            f"| {NAMES[key]} | {row['test_accuracy']:.1%}{_interval(row['test_accuracy'], tests)} | "
            f"{row['measured_latency_ms']:.3f} ({latency['p10_ms']:.3f}-{latency['p90_ms']:.3f}) | "
            f"{predicted.get(key, '-')} | {_mb(row['file_bytes'])} | {_mb(row['peak_bytes'])} | "
            f"{_count(row.get('macs'))} | {_count(row.get('params'))} |"
        )
    lines += [
        "",
        f"Latency: batch 1, {device['threads']} ONNX Runtime thread(s), median of the quietest of "
        f"{picked['latency']['passes']} interleaved passes ({picked['latency']['repeats']} runs in all), "
        "in a fresh process. Peak memory: resident-memory rise from loading and running the model "
        f"beyond an empty ONNX Runtime session (itself {_mb(report['empty_session_peak_bytes'])} MB), "
        "median of 3 fresh processes.",
        "",
        f"Device: {device['cpu']} ({', '.join(device['cpu_flags']) or 'no SIMD flags read'}), "
        f"{device['logical_cpus']} logical CPUs, {device['system']} {device['machine']}, "
        f"ONNX Runtime {device['onnxruntime']}. The prediction came from the device profile "
        f"`{report['predicted']['device']}`.",
        "",
        "## Compression recipe",
        "",
        *[f"- {line}" for line in report["recipe_in_words"]],
        f"- Validation accuracy after fine-tuning: {report['validation_accuracy']:.1%} ({tuning}).",
        "",
        "<details><summary>Recipe JSON (recipe.json)</summary>",
        "",
        "```json",
        json.dumps(report["recipe"], indent=2),
        "```",
        "",
        "</details>",
        "",
        "## Layers and their runtime formats",
        "",
        "| layer | format | teacher |",
        "|---|---|---|",
        *[
            f"| {layer} | {fmt} | {report['teacher_layer_formats'].get(layer, 'float')} |"
            for layer, fmt in report["layers"].items()
        ],
        "",
    ]
    rejected = [a for a in report["attempts"] if not a["within_budget"]]
    if rejected:
        lines += [
            "## Candidates set aside",
            "",
            *[
                f"- trial {a['trial']}: predicted {a['predicted_latency_ms']:.3f} ms, measured "
                f"{a['measured_latency_ms']:.3f} ms, over budget (kept in `{a['folder']}`)"
                for a in rejected
            ],
            "",
        ]
    lines += [
        "## Known failure modes and limits",
        "",
        f"- Tuned and tested on `{data.get('root', 'the teacher data')}` (split `{report['split']}`, "
        f"{tests} test clips: one clip is {1 / max(tests, 1):.1%}). Elsewhere its accuracy is unknown.",
        *(
            [
                "- The split is speaker-dependent: every test speaker was also heard in training. Expect "
                "lower accuracy on new voices (evaluate with a `speaker:NAME` split before relying on it)."
            ]
            if report["split"] in ("official", "hash")
            else []
        ),
        f"- Clips are cut or padded to {seconds:.2f} s; "
        "speech beyond that is not heard. Other sample rates are resampled by `run-model`, not by the model.",
        "- The latency holds for this CPU, ONNX Runtime version and thread count; other devices differ "
        "(calibrate them with `paretone calibrate --kit`). Low-bit kernels are the most device-dependent.",
        "- Quiet recordings of isolated words: no noise, far-field or multi-word robustness was tested.",
        "",
    ]
    return "\n".join(lines)
