"""Streaming: a searched and picked streaming student against offline inference and the sliding-window AST.

    python benchmarks/streaming.py                  # aed.py's full-scale mixtures and teacher (reused)
    python benchmarks/streaming.py --scale medium   # aed.py --scale medium's (about 20 minutes after it)
    python benchmarks/streaming.py --quick          # 600 mixtures, a tiny search (< 10 minutes)

1. FSDD mixtures and their AST teacher (benchmarks/aed.py's, in the same --work folder; made if absent).
2. `search --chunk-ms 40` at 10% of the teacher's per-chunk latency (a clip model runs a whole window
   per chunk), recurrent students offered beside the pruned teacher; `pick` ships the stream.
3. Streamed against offline on the long recordings: the picked student's PyTorch model over each
   whole recording against its ONNX stream fed chunk by chunk from the zero state (max difference
   of frame logits), and how well the stream's events agree with the offline events (event F1).
4. Per-chunk latency on the same 30 s of audio, interleaved repetitions (1 thread): the stream per
   chunk; the picked model's clip export and the AST teacher each on a whole window per chunk
   (what a model that cannot stream costs at the same output rate): p50/p95 and ratios.
5. Real-time factor over a 10-minute recording (the long recordings end to end, repeated): the
   stream, and the AST on sliding windows with a 0.5 s hop.
6. Event-based (0.2 s collar) and segment-based (1 s) F1 on the long recordings against their strong
   labels: the picked stream against the offline teacher on sliding windows (0.25 s hop).
Writes JSON to --out (default benchmarks/results/streaming[-quick].json) and prints tables.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from aed import Scale, _mixtures, _table, _teacher, parse_scaled
from rich.console import Console

from paretone._io import write_json
from paretone._version import __version__
from paretone.audio import make_splits, open_dataset, read_events, read_recording
from paretone.compress import load_student
from paretone.hw_models import calibrate
from paretone.models import build_model, export_stream, family_of, load_model
from paretone.runtime import chunk_samples, make_session, run_stream, run_windows
from paretone.search import Budget, SearchSettings, run_search
from paretone.ship import PickReport, PickSettings, detect_events, event_scores, pick, stream_recording
from paretone.ship._events import MEDIAN_MS, median_steps
from paretone.spaces import SearchSpace, SpaceConfig
from paretone.tasks import MULTILABEL

CHUNK_MS = 40.0
FRACTION = 0.10


def _search_and_pick(teacher_dir: Path, work: Path, scale: Scale, console: Console) -> Path:
    epochs = scale.search_student_epochs
    lstm = [s for s in scale.search_students if s.startswith("lstm")]  # the family that streams
    space = SpaceConfig.from_dict({"students": [f"{s};epochs={epochs}" for s in lstm]})
    teacher = load_model(teacher_dir).model
    chunk = round(CHUNK_MS * teacher.config.front_end.sample_rate / 1000)
    devices = work / "devices-stream"
    operators = dict(SearchSpace.build(teacher.structure(), space, teacher=teacher.config).params)
    calibrate(device="local", profile_dir=devices, teacher=teacher, operators=operators, chunk_samples=chunk,
              models=scale.calibration_models, passes=max(2, scale.passes // 2))  # fmt: skip
    database = work / "streaming-study.db"
    settings = SearchSettings(
        teacher=teacher_dir,
        study="bench-streaming",
        storage=f"sqlite:///{database}",
        trials=scale.search_trials,
        budget=Budget(latency_fraction=FRACTION),
        workers=2,
        epochs=scale.search_epochs,
        runs_dir=work / "runs",
        space=space,
        chunk_ms=CHUNK_MS,
        resume=database.is_file(),
    )
    summary = run_search(settings, device="local", profile_dir=devices)
    console.print(
        f"search: {summary.fine_tuned} fine-tuned, {summary.screened} screened, front {summary.front}"
    )
    out = work / "pick-stream"
    pick(
        PickSettings(
            study=settings.study,
            storage=settings.storage,
            out=out,
            latency_limit_fraction=FRACTION,
            final_epochs=scale.final_epochs,
            overwrite=True,
        ),
        progress=console.print,
    )
    return out


def _stream_vs_offline(picked: Path, recordings: list[Path], work: Path) -> dict[str, Any]:
    """The picked student in PyTorch over each whole recording against its ONNX stream, and the same
    in float (its weights without fake quantization)."""
    report = PickReport.read(picked / "pick.json")
    student = load_student(picked / "student")[0].model.eval()
    fe = student.config.front_end
    session = make_session(picked / "model.onnx", 1)
    # The same weights without fake quantization, streamed in float: what streaming itself changes.
    float_model = build_model(student.config).eval()
    missing = float_model.load_state_dict(student.state_dict(), strict=False).missing_keys
    if missing:
        raise SystemExit(f"the float copy of the picked student lacks {missing}")
    float_stream = make_session(
        export_stream(family_of(student.config).streaming(float_model), work / "float-stream.onnx",
                      chunk_samples=chunk_samples(session)), 1,
    )  # fmt: skip
    diffs, float_diffs, offline_events, stream_events = [], [], {}, {}
    labels = report.labels
    for path in recordings:
        wave = read_recording(path, sample_rate=fe.sample_rate)
        with torch.no_grad():
            offline = student.frame_logits(student.features(wave[None]))[0].numpy()
            offline_float = float_model.frame_logits(float_model.features(wave[None]))[0].numpy()
        run = run_stream(float_stream, wave.numpy(), sample_rate=fe.sample_rate, hop_samples=fe.hop_length)
        float_diffs.append(float(np.abs(run.logits[: len(offline_float)] - offline_float).max()))
        streamed = run_stream(
            session, wave.numpy(), sample_rate=fe.sample_rate, hop_samples=fe.hop_length
        ).logits
        streamed = streamed[: len(offline)]
        diffs.append(float(np.abs(streamed - offline).max()))
        ends = (np.arange(len(offline)) + 1) * fe.hop_length
        for logits, into in ((offline, offline_events), (streamed, stream_events)):
            active = MULTILABEL.decide(MULTILABEL.probabilities(logits), report.decision)
            into[path.stem] = detect_events(
                active, ends, step_samples=fe.hop_length, sample_rate=fe.sample_rate, labels=labels,
                median_steps=median_steps(MEDIAN_MS, 1000 * fe.hop_length / fe.sample_rate),
            )  # fmt: skip
    agreement = event_scores(offline_events, stream_events, labels)
    return {
        "max_abs_diff": max(diffs),
        "per_recording_max_abs_diff": diffs,
        "float_max_abs_diff": max(float_diffs),
        "layers": report.layers,
        "events_offline": sum(len(v) for v in offline_events.values()),
        "events_streamed": sum(len(v) for v in stream_events.values()),
        "event_f1_stream_vs_offline": agreement["event_f1"],
    }


def _per_chunk(
    picked: Path, teacher_onnx: Path, audio: np.ndarray, *, rate: int, hop: int, window: int, reps: int
) -> dict[str, Any]:
    """p50/p95 per call of the stream and of a whole window per chunk, interleaved repetitions."""
    sessions = {
        "stream": make_session(picked / "model.onnx", 1),
        "student_window": make_session(picked / "model-clip.onnx", 1),
        "teacher_window": make_session(teacher_onnx, 1),
    }
    chunk = chunk_samples(sessions["stream"])

    def run(name: str):
        if name == "stream":
            return run_stream(sessions[name], audio, sample_rate=rate, hop_samples=hop)
        return run_windows(sessions[name], audio, sample_rate=rate, window_samples=window, hop_samples=chunk)

    names = ["stream", "student_window", "teacher_window"]
    figures: dict[str, dict[str, list[float]]] = {n: {"p50_ms": [], "p95_ms": []} for n in names}
    for rep in range(reps):
        order = names[:]
        random.Random(rep).shuffle(order)
        for name in order:
            result = run(name)
            figures[name]["p50_ms"].append(result.percentile_ms(50))
            figures[name]["p95_ms"].append(result.percentile_ms(95))
    out: dict[str, Any] = {"chunk_samples": chunk, "window_samples": window, "repetitions": reps}
    for name in names:
        out[name] = {k: statistics.median(v) for k, v in figures[name].items()}
    for other in ("student_window", "teacher_window"):
        out[f"stream_p95_vs_{other}"] = statistics.median(
            s / o for s, o in zip(figures["stream"]["p95_ms"], figures[other]["p95_ms"], strict=True)
        )
    return out


def main(argv: list[str] | None = None) -> int:
    args, scale, work, out = parse_scaled(argv, __doc__, "streaming")
    quick = scale.name == "quick"
    console = Console()
    started = time.perf_counter()
    torch.set_num_threads(2)

    fsdd = open_dataset(args.data, "fsdd")
    manifest = _mixtures(fsdd, work, scale)
    mixtures = open_dataset(manifest)
    split = make_splits(mixtures).name
    teacher_row = _teacher(mixtures, "ast", split, work / "teacher-ast-mix", scale.teacher_epochs)
    teacher_dir = Path(teacher_row["folder"])
    picked = _search_and_pick(teacher_dir, work, scale, console)

    teacher_fe = load_model(teacher_dir).model.config.front_end
    rate, window = teacher_fe.sample_rate, teacher_fe.clip_samples
    recordings = sorted((manifest.parent / "long").glob("*.wav"))
    hop = load_student(picked / "student")[0].model.config.front_end.hop_length

    console.print("streamed against offline on the long recordings")
    exactness = _stream_vs_offline(picked, recordings, work)

    console.print("per-chunk latency, interleaved")
    waves = [read_recording(p, sample_rate=rate).numpy() for p in recordings]
    thirty = np.concatenate(waves)[: 30 * rate]
    chunks = _per_chunk(
        picked, teacher_dir / "model.onnx", thirty, rate=rate, hop=hop, window=window, reps=3 if quick else 7
    )

    console.print("real-time factor over 10 minutes")
    joined = np.concatenate(waves)
    ten = np.tile(joined, int(np.ceil(600 * rate / len(joined))))[: 600 * rate]
    stream_run = run_stream(make_session(picked / "model.onnx", 1), ten, sample_rate=rate, hop_samples=hop)
    window_run = run_windows(
        make_session(teacher_dir / "model.onnx", 1), ten, sample_rate=rate,
        window_samples=window, hop_samples=rate // 2,
    )  # fmt: skip
    rtf = {
        "audio_seconds": len(ten) / rate,
        "stream": stream_run.real_time_factor,
        "teacher_windows_hop_500ms": window_run.real_time_factor,
        "stream_state_bytes": stream_run.state_bytes,
        "stream_algorithmic_delay_ms": CHUNK_MS,
        "teacher_windows_algorithmic_delay_ms": 1000 * window / rate,
    }

    console.print("events against the strong labels")
    truth = {p.stem: read_events(p.with_suffix(".events.csv")) for p in recordings}
    labels = mixtures.labels
    picked_events = {p.stem: stream_recording(picked / "model.onnx", p).events for p in recordings}
    teacher_events = {
        p.stem: stream_recording(teacher_dir / "model.onnx", p, hop_ms=250).events for p in recordings
    }
    events = {
        "picked_stream": event_scores(truth, picked_events, labels),
        "teacher_windows_hop_250ms": event_scores(truth, teacher_events, labels),
        "recordings": len(recordings),
        "reference_events": sum(len(v) for v in truth.values()),
    }

    report = PickReport.read(picked / "pick.json")
    result = {
        "paretone_version": __version__,
        "quick": quick,
        "scale": scale.name,
        "seconds": round(time.perf_counter() - started, 1),
        "chunk_ms": CHUNK_MS,
        "teacher": teacher_row,
        "picked": {"trial": report.trial, "recipe_in_words": list(report.recipe_in_words),
                   "limit_ms": report.limit_ms, "streaming": report.streaming and asdict(report.streaming)},
        "exactness": exactness,
        "per_chunk": chunks,
        "real_time_factor": rtf,
        "events": events,
        "stream_vs_offline_max_abs_diff": exactness["max_abs_diff"],
        "stream_vs_offline_float_max_abs_diff": exactness["float_max_abs_diff"],
        "event_f1": {"picked_stream": events["picked_stream"]["event_f1"],
                     "teacher_offline": events["teacher_windows_hop_250ms"]["event_f1"]},
    }  # fmt: skip
    write_json(out, result)

    _table(
        "per chunk (40 ms), 1 thread, interleaved",
        [
            (name, f"{chunks[name]['p50_ms']:.3f}", f"{chunks[name]['p95_ms']:.3f}")
            for name in ("stream", "student_window", "teacher_window")
        ],
        ("call", "p50 ms", "p95 ms"),
        console,
    )
    _table(
        "events on the long recordings",
        [
            (name, f"{events[name]['event_f1']:.3f}", f"{events[name]['segment_f1']:.3f}")
            for name in ("picked_stream", "teacher_windows_hop_250ms")
        ],
        ("model", "event F1", "segment F1"),
        console,
    )
    console.print(
        f"stream vs offline: max |diff| {exactness['max_abs_diff']:.2e} as shipped, "
        f"{exactness['float_max_abs_diff']:.2e} in float; events agree "
        f"F1 {exactness['event_f1_stream_vs_offline']:.3f}; RTF over 10 min: stream {rtf['stream']:.4f}, "
        f"AST windows {rtf['teacher_windows_hop_500ms']:.4f}"
    )
    console.print(f"wrote {out} ({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
