"""`run-model --stream` and sound events: segments as audio arrives, events scored as DCASE scores them."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch

from paretone._version import __version__
from paretone.audio import Event, FrontEndConfig
from paretone.models import LSTM_FAMILY, build_model, export_onnx, export_stream
from paretone.runtime import ModelMetadata, stamp_metadata
from paretone.ship import detect_events, event_scores
from paretone.ship._events import MEDIAN_MS, median_steps
from tests.helpers import invoke_cli, run_cli

LABELS = tuple(str(d) for d in range(10))


def test_events_are_runs_of_decisions_without_one_step_flickers():
    active = np.zeros((20, 2), bool)
    active[4:10, 0] = True
    active[12, 0] = True  # a flicker: removed by the median filter
    active[15:20, 1] = True
    ends = (np.arange(20) + 1) * 80
    events = detect_events(active, ends, step_samples=80, sample_rate=8000, labels=("a", "b"), median_steps=3)
    assert events == [Event(0.04, 0.1, "a"), Event(0.15, 0.2, "b")]


def test_the_median_filter_spans_a_quarter_second_whatever_the_step():
    assert median_steps(MEDIAN_MS, 10.0) == 25  # a stream's 10 ms frames
    assert median_steps(MEDIAN_MS, 40.0) == 7  # odd, so the filter is centred
    assert median_steps(MEDIAN_MS, 500.0) == 1  # a sliding window's steps: no filter


def test_event_and_segment_f1_follow_the_dcase_collars():
    truth = {"r": [Event(1.0, 1.5, "3"), Event(4.0, 4.4, "7")]}
    assert event_scores(truth, truth, LABELS)["event_f1"] == pytest.approx(1.0)
    near = {"r": [Event(1.1, 1.6, "3"), Event(4.15, 4.5, "7")]}  # onsets within 0.2 s
    assert event_scores(truth, near, LABELS)["event_f1"] == pytest.approx(1.0)
    late = {"r": [Event(1.5, 2.0, "3"), Event(4.0, 4.4, "7")]}
    scores = event_scores(truth, late, LABELS)
    # 0.5 s late is outside the event collar but inside the same 1 s segment.
    assert scores["event_f1"] == pytest.approx(0.5)
    assert scores["segment_f1"] == pytest.approx(1.0)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """An LSTM (untrained) as a 40 ms streaming export and as a clip model, stamped as pick stamps them."""
    folder = tmp_path_factory.mktemp("stream-models")
    torch.manual_seed(0)
    config = LSTM_FAMILY.teacher_config(
        num_classes=10, front_end=FrontEndConfig(clip_samples=16000), hidden=(16,)
    )
    model = build_model(config).eval()
    meta = ModelMetadata(LABELS, 8000, 16000, __version__, {}, "multilabel", tuple([0.5] * 10))
    stream = export_stream(LSTM_FAMILY.streaming(model), folder / "stream.onnx", chunk_samples=320)
    stamp_metadata(stream, ModelMetadata(**{**meta.__dict__, "chunk_samples": 320, "hop_samples": 80}))
    clip = export_onnx(model, folder / "clip.onnx")
    stamp_metadata(clip, meta)
    return stream, clip


def _lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def _piped_segments(model, pcm: bytes) -> list[dict]:
    """`run-model MODEL - --stream` fed ``pcm`` (16-bit mono) on stdin: its segment records."""
    piped = subprocess.run(
        [sys.executable, "-m", "paretone.cli", "run-model", str(model), "-", "--stream"],
        input=pcm, capture_output=True, timeout=300,
    )  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    return [r for r in _lines(piped.stdout.decode()) if r["kind"] == "segment"]


@pytest.mark.slow  # streams two recordings through two models in subprocesses
def test_stream_mode_reports_segments_events_and_the_real_time_factor(models, tiny_mixtures):
    stream, _ = models
    recording = next((tiny_mixtures / "long").glob("*.wav"))
    result = run_cli("run-model", str(stream), str(recording), "--stream")
    assert result.returncode == 0, result.stderr
    records = _lines(result.stdout)
    segments = [r for r in records if r["kind"] == "segment"]
    (summary,) = [r for r in records if r["kind"] == "summary"]
    seconds = soundfile.info(str(recording)).duration
    assert len(segments) == int(np.ceil(seconds / 0.04)) and segments[1]["start_s"] == pytest.approx(0.04)
    assert set(segments[0]["probabilities"]) == set(LABELS)
    assert summary["mode"] == "stream" and summary["algorithmic_delay_ms"] == pytest.approx(40.0)
    assert (
        summary["audio_seconds"] == pytest.approx(seconds, abs=1e-3) and 0 < summary["real_time_factor"] < 1
    )
    assert summary["state_bytes"] == 4 * ((256 - 80) + 2 * 16)  # STFT overlap (n_fft - hop) + h, c
    assert "real-time factor" in result.stderr

    # the same audio as raw 16-bit PCM on stdin gives the same segments
    pcm = (soundfile.read(str(recording), dtype="int16")[0]).tobytes()
    again = _piped_segments(stream, pcm)
    assert len(again) == len(segments)
    first = np.array(list(segments[5]["probabilities"].values()))
    assert np.abs(np.array(list(again[5]["probabilities"].values())) - first).max() < 1e-3

    # a recording that ends mid-chunk: the last chunk is zero-padded, its segment ends with the audio
    tail = _piped_segments(stream, pcm[: 2 * 8000 + 2 * 100])  # 1 s and 100 samples
    assert len(tail) == 26 and tail[-1]["start_s"] == pytest.approx(1.0)
    assert tail[-1]["end_s"] == pytest.approx(1.0125, abs=1e-3)  # not 1.04: the padding is not audio


def test_a_clip_model_runs_on_sliding_windows_and_csv_is_offered(models, tiny_mixtures):
    _, clip = models
    recording = next((tiny_mixtures / "long").glob("*.wav"))
    result = run_cli("run-model", str(clip), str(recording), "--stream", "--hop-ms", "500", "--csv")
    assert result.returncode == 0, result.stderr
    rows = result.stdout.strip().splitlines()
    assert rows[0] == "file,kind,start_s,end_s,label,probability"
    spans = sorted({(float(r.split(",")[2]), float(r.split(",")[3])) for r in rows[1:] if ",segment," in r})
    # 2 s windows every 0.5 s: each decides the 0.5 s at its centre; together they tile the recording.
    assert spans[0] == (0.0, 0.25) and spans[1] == (0.25, 0.75)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    assert spans[-1][1] == pytest.approx(soundfile.info(str(recording)).duration)
    assert "windows" in result.stderr and "algorithmic delay 2000 ms" in result.stderr


def test_stream_mode_refuses_bad_audio_in_one_line(models, tmp_path):
    stream, _ = models
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00not audio")
    result = invoke_cli("run-model", str(stream), str(broken), "--stream")
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert "cannot read audio" in result.stderr
    assert invoke_cli("run-model", str(stream), str(broken), "--csv").returncode == 2  # --csv needs --stream
