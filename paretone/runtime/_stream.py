"""Running a model over a recording of any length: chunk by chunk with its state, or on sliding windows.

A streaming export (``models.export_stream``) takes one chunk and its state and returns per-frame
logits and the new state; ONNX Runtime sessions hold no state, so the runner carries it, starting
from zeros. A model that cannot stream runs on windows of its clip length every ``hop`` samples.
Per-chunk compute times are recorded, so one run gives p50/p95 per chunk and the real-time factor.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from paretone.runtime._kit_runner import make_session
from paretone.runtime._session import INPUT_NAME, OUTPUT_NAME, STATE_SUFFIX, STREAM_INPUT, STREAM_OUTPUT


@dataclass(frozen=True)
class StreamRun:
    """What one pass over a recording gave: ``logits`` per output step (frames of a stream, windows
    of a sliding-window model), each step's end in samples, and the compute time of every call."""

    logits: np.ndarray  # (steps, classes)
    step_end_samples: np.ndarray  # (steps,) the sample each step's output refers up to
    call_ms: list[float] = field(default_factory=list)  # one per session call (chunk or window)
    audio_samples: int = 0
    sample_rate: int = 1
    state_bytes: int = 0

    @property
    def audio_seconds(self) -> float:
        return self.audio_samples / self.sample_rate

    @property
    def real_time_factor(self) -> float:
        """Compute time over audio time: below 1 keeps up with the stream."""
        return sum(self.call_ms) / 1000 / self.audio_seconds if self.audio_samples else 0.0

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.call_ms, q)) if self.call_ms else 0.0


def is_streaming(session: Any) -> bool:
    return STREAM_INPUT in {i.name for i in session.get_inputs()}


def chunk_samples(session: Any) -> int:
    """The fixed chunk length a streaming session takes."""
    shape = next(i.shape for i in session.get_inputs() if i.name == STREAM_INPUT)
    return int(shape[-1])


def zero_state(session: Any) -> dict[str, np.ndarray]:
    return {
        i.name: np.zeros([int(d) for d in i.shape], np.float32)
        for i in session.get_inputs()
        if i.name != STREAM_INPUT
    }


class Streamer:
    """Feeds a streaming session as audio arrives: ``push`` samples, get the frames of every whole
    chunk so far; ``finish`` zero-pads the tail to a whole chunk. Records each call's compute time."""

    def __init__(self, session: Any, *, hop_samples: int) -> None:
        self.session, self.hop = session, hop_samples
        self.chunk = chunk_samples(session)
        self.state = zero_state(session)
        self.names = [o.name for o in session.get_outputs()]
        self.pending = np.zeros(0, np.float32)
        self.frames_out = 0
        self.call_ms: list[float] = []
        self.samples_in = 0

    def push(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(logits (frames, classes), frame end samples) of the chunks ``samples`` completed."""
        self.samples_in += len(samples)
        self.pending = np.concatenate([self.pending, np.asarray(samples, np.float32)])
        out = []
        while len(self.pending) >= self.chunk:
            feed = {STREAM_INPUT: self.pending[None, : self.chunk], **self.state}
            self.pending = self.pending[self.chunk :]
            began = time.perf_counter()
            outputs = dict(zip(self.names, self.session.run(None, feed), strict=True))
            self.call_ms.append((time.perf_counter() - began) * 1000)
            out.append(outputs[STREAM_OUTPUT][0])
            self.state = {name: outputs[name + STATE_SUFFIX] for name in self.state}
        return self._steps(out)

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        if not len(self.pending):
            return self._steps([])
        tail = (-len(self.pending)) % self.chunk
        counted = self.samples_in
        result = self.push(np.zeros(tail, np.float32))
        self.samples_in = counted
        return result

    def _steps(self, out: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        logits = np.concatenate(out) if out else np.zeros((0, 0), np.float32)
        ends = (self.frames_out + np.arange(len(logits)) + 1) * self.hop
        self.frames_out += len(logits)
        return logits, ends

    @property
    def state_bytes(self) -> int:
        return sum(v.nbytes for v in self.state.values())


class Windower:
    """Runs a model that cannot stream on the window of ``window_samples`` ending every
    ``hop_samples`` of the audio pushed so far (zeros before the start), as it arrives."""

    def __init__(self, session: Any, *, window_samples: int, hop_samples: int) -> None:
        self.session, self.window, self.hop = session, window_samples, hop_samples
        self.buffer = np.zeros(window_samples, np.float32)
        self.pending = np.zeros(0, np.float32)
        self.call_ms: list[float] = []
        self.samples_in = 0
        self.state_bytes = 0

    def push(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.samples_in += len(samples)
        self.pending = np.concatenate([self.pending, np.asarray(samples, np.float32)])
        logits, ends = [], []
        while len(self.pending) >= self.hop:
            self.buffer = np.concatenate([self.buffer[self.hop :], self.pending[: self.hop]])
            self.pending = self.pending[self.hop :]
            began = time.perf_counter()
            out = self.session.run([OUTPUT_NAME], {INPUT_NAME: self.buffer[None]})[0]
            self.call_ms.append((time.perf_counter() - began) * 1000)
            logits.append(out[0])
            ends.append(self.samples_in - len(self.pending))
        return (np.stack(logits) if logits else np.zeros((0, 0), np.float32)), np.array(ends, dtype=np.int64)

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        if not len(self.pending):
            return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
        counted = self.samples_in
        logits, ends = self.push(np.zeros((-len(self.pending)) % self.hop, np.float32))
        self.samples_in = counted
        return logits, np.minimum(ends, counted)


def _run(runner: Streamer | Windower, waveform: np.ndarray, sample_rate: int) -> StreamRun:
    parts = [runner.push(np.asarray(waveform, np.float32)), runner.finish()]
    parts = [p for p in parts if len(p[0])]
    logits = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, 0), np.float32)
    ends = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
    return StreamRun(logits, ends, runner.call_ms, len(waveform), sample_rate, runner.state_bytes)


def run_stream(
    model: str | os.PathLike[str] | Any,
    waveform: np.ndarray,
    *,
    sample_rate: int,
    hop_samples: int,
    threads: int = 1,
) -> StreamRun:
    """Feed a whole ``waveform`` (samples,) chunk by chunk (the tail zero-padded to a whole chunk)."""
    session = make_session(model, threads=threads) if isinstance(model, str | os.PathLike) else model
    return _run(Streamer(session, hop_samples=hop_samples), waveform, sample_rate)


def run_windows(
    model: str | os.PathLike[str] | Any,
    waveform: np.ndarray,
    *,
    sample_rate: int,
    window_samples: int,
    hop_samples: int,
    threads: int = 1,
) -> StreamRun:
    """Classify a window of ``window_samples`` ending every ``hop_samples`` (zeros before the start),
    as a model that cannot stream would run on a stream."""
    session = make_session(model, threads=threads) if isinstance(model, str | os.PathLike) else model
    runner = Windower(session, window_samples=window_samples, hop_samples=hop_samples)
    return _run(runner, waveform, sample_rate)
