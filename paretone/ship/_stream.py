"""`run-model --stream`: a model over a recording of any length, as audio arrives.

A streaming export runs chunk by chunk with its state (a segment is one chunk: each label's highest
frame probability in it); a model that cannot stream runs on windows of its clip length every
``hop`` (a segment is one window, its decision placed at the window's centre). Segments are
reported as they are computed; events (onset, offset, label), from the task's decisions, at the end.
Audio is a file (any format soundfile reads, resampled to the model's rate) or raw 16-bit
little-endian mono PCM at the model's rate on stdin (``-``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from paretone.audio import Event, read_recording
from paretone.errors import ConfigError, DataError
from paretone.runtime import ModelMetadata, Streamer, Windower, is_streaming, open_session
from paretone.ship._events import MEDIAN_MS, detect_events, median_steps
from paretone.ship._report import StreamingFacts
from paretone.tasks import task_named

FIX = "re-export it with `paretone pick`"
STDIN = "-"
BLOCK_SECONDS = 0.5  # audio read per step from a file or stdin


@dataclass(frozen=True)
class StreamSummary:
    """How the run went: mode ("stream" or "windows"), its timing and its algorithmic delay (how
    much audio the model waits for before it can answer about a sample)."""

    mode: str
    audio_seconds: float
    calls: int
    p50_ms: float
    p95_ms: float
    real_time_factor: float
    algorithmic_delay_ms: float
    step_ms: float  # audio per output step (a frame, or a window's hop)
    state_bytes: int
    events: list[Event] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["events"] = [e.to_dict() for e in self.events]
        return data


def _blocks(source: str | os.PathLike[str] | BinaryIO, sample_rate: int) -> Iterator[np.ndarray]:
    block = max(1, int(BLOCK_SECONDS * sample_rate))
    if isinstance(source, str | os.PathLike) and str(source) != STDIN:
        wave = read_recording(source, sample_rate=sample_rate).numpy()
        for start in range(0, len(wave), block):
            yield wave[start : start + block]
        return
    stream = sys.stdin.buffer if isinstance(source, str | os.PathLike) else source
    leftover = b""
    while True:
        data = stream.read(2 * block)
        if not data:
            break
        data = leftover + data
        whole = len(data) - len(data) % 2
        leftover = data[whole:]
        yield np.frombuffer(data[:whole], dtype="<i2").astype(np.float32) / 32768.0


def stream_recording(
    model: str | os.PathLike[str],
    source: str | os.PathLike[str] | BinaryIO,
    *,
    threads: int = 1,
    hop_ms: float | None = None,
    median_ms: float = MEDIAN_MS,
    on_segment: Callable[[dict[str, Any]], None] | None = None,
) -> StreamSummary:
    """Run ``model`` over ``source``; ``on_segment`` receives each segment's record as it is made.
    ``hop_ms``: the window hop of a model that cannot stream (default: a quarter of its clip)."""
    session = open_session(Path(model), threads=threads, fix=FIX)
    meta = ModelMetadata.of_session(session, str(model))
    task = task_named(meta.task)
    rate = meta.sample_rate
    if is_streaming(session):
        if meta.hop_samples is None:
            raise ConfigError(f"{model}: a streaming model without paretone.hop_samples metadata; {FIX}")
        runner: Streamer | Windower = Streamer(session, hop_samples=meta.hop_samples)
        mode, step, delay = "stream", meta.hop_samples, runner.chunk
        per_segment = runner.chunk // meta.hop_samples  # frames per chunk
    else:
        hop = round((hop_ms or 1000 * meta.clip_samples / rate / 4) * rate / 1000)
        if not 0 < hop <= meta.clip_samples:
            raise ConfigError(f"--hop-ms must be between 1/{rate} s and the model's clip length")
        runner = Windower(session, window_samples=meta.clip_samples, hop_samples=hop)
        mode, step, delay, per_segment = "windows", hop, meta.clip_samples, 1
    all_probabilities, all_ends = [], []
    reported = 0  # the sample the last segment ended at: the next one starts there

    def emit(probabilities: np.ndarray, ends: np.ndarray) -> None:
        nonlocal reported
        all_probabilities.append(probabilities)
        all_ends.append(ends)
        if on_segment is None:
            return
        for i in range(0, len(probabilities), per_segment):
            highest = probabilities[i : i + per_segment].max(0)
            end = int(ends[min(i + per_segment, len(ends)) - 1])
            scores = {label: round(float(p), 4) for label, p in zip(meta.labels, highest, strict=True)}
            start, reported = reported, end
            on_segment(
                {"start_s": round(start / rate, 3), "end_s": round(end / rate, 3), "probabilities": scores}
            )

    def emit_logits(logits: np.ndarray, ends: np.ndarray) -> None:
        if not len(logits):
            return
        if logits.shape[-1] != len(meta.labels):
            raise ConfigError(f"{model}: {logits.shape[-1]} outputs for {len(meta.labels)} labels; {FIX}")
        probabilities = task.probabilities(logits)
        if mode == "windows":
            # A window's decision covers the hop at its centre; windows whose centre lies before the
            # recording's start say nothing about it.
            ends = ends - (meta.clip_samples - step) // 2
            probabilities, ends = probabilities[ends > 0], ends[ends > 0]
        # the zero padding of the last chunk is not audio: no step starting in it, none ending past it
        within = ends - step < runner.samples_in
        probabilities, ends = probabilities[within], np.minimum(ends[within], runner.samples_in)
        if len(ends):
            emit(probabilities, ends)

    for block in _blocks(source, rate):
        emit_logits(*runner.push(block))
    emit_logits(*runner.finish())
    if mode == "windows" and all_ends and all_ends[-1][-1] < runner.samples_in:
        # No later window's centre reaches the tail: the last window decides it, hop by hop.
        tail = np.minimum(
            np.arange(all_ends[-1][-1] + step, runner.samples_in + step, step), runner.samples_in
        )
        emit(np.repeat(all_probabilities[-1][-1:], len(tail), axis=0), tail)
    if not runner.samples_in:
        raise DataError(f"{source}: no audio read; pass a recording or 16-bit PCM on stdin")
    probabilities = (
        np.concatenate(all_probabilities) if all_probabilities else np.zeros((0, len(meta.labels)))
    )
    ends = np.concatenate(all_ends) if all_ends else np.zeros(0, np.int64)
    active = (
        task.decide(probabilities, meta.thresholds)
        if len(probabilities)
        else np.zeros((0, len(meta.labels)), bool)
    )
    events = detect_events(
        active,
        np.clip(ends, 0, None),
        step_samples=step,
        sample_rate=rate,
        labels=meta.labels,
        median_steps=median_steps(median_ms, 1000 * step / rate),
    )
    times = runner.call_ms
    audio_s = runner.samples_in / rate
    return StreamSummary(
        mode=mode,
        audio_seconds=round(audio_s, 3),
        calls=len(times),
        p50_ms=float(np.percentile(times, 50)) if times else 0.0,
        p95_ms=float(np.percentile(times, 95)) if times else 0.0,
        real_time_factor=sum(times) / 1000 / audio_s if audio_s else 0.0,
        algorithmic_delay_ms=1000 * delay / rate,
        step_ms=1000 * step / rate,
        state_bytes=runner.state_bytes,
        events=events,
    )


def stream_facts(
    shipped: Path,
    clip_model: Path,
    clips: np.ndarray,
    *,
    sample_rate: int,
    hop_samples: int,
    chunk_samples: int,
    streams: bool,
    threads: int = 1,
    seconds: float = 30.0,
) -> StreamingFacts:
    """Per-call p50/p95, real-time factor and state bytes over ``seconds`` of test clips played as one
    stream; for a streaming model, also how far its outputs are from the clip model's on the same
    clips (each clip streamed from the zero state, its frames pooled as the clip model pools them)."""
    from paretone.runtime import make_session, run_logits, run_stream, run_windows

    count = max(1, min(len(clips), int(seconds * sample_rate / clips.shape[1])))
    audio = clips[:count].reshape(-1)
    session = make_session(shipped, threads)
    if not streams:
        run = run_windows(
            session, audio, sample_rate=sample_rate, window_samples=clips.shape[1], hop_samples=chunk_samples
        )
        delay, diff = clips.shape[1], None
    else:
        run = run_stream(session, audio, sample_rate=sample_rate, hop_samples=hop_samples)
        delay, diffs = chunk_samples, []
        clip_session = make_session(clip_model, threads)
        for clip in clips[:8]:
            frames = run_stream(session, clip, sample_rate=sample_rate, hop_samples=hop_samples).logits
            frames = frames[: len(clip) // hop_samples]
            pooled = np.logaddexp.reduce(frames, axis=0) - np.log(len(frames))
            diffs.append(float(np.abs(pooled - run_logits(clip_session, clip[None])[0]).max()))
        diff = max(diffs)
    return StreamingFacts(
        mode="stream" if streams else "windows",
        chunk_samples=chunk_samples,
        chunk_ms=1000 * chunk_samples / sample_rate,
        p50_ms=run.percentile_ms(50),
        p95_ms=run.percentile_ms(95),
        real_time_factor=run.real_time_factor,
        audio_seconds=round(run.audio_seconds, 3),
        state_bytes=run.state_bytes,
        algorithmic_delay_ms=1000 * delay / sample_rate,
        stream_vs_clip_max_abs_diff=diff,
    )
