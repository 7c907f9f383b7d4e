"""A search for a stream (``--chunk-ms``) to a shipped streaming model: per-chunk scores, the stream
exported beside its clip model, its per-chunk p95 measured against the limit, run-model on it."""

from __future__ import annotations

import json

import onnx
import pytest

from paretone.models import load_model
from paretone.runtime import STREAM_INPUT
from paretone.search import Budget, StudyInfo, load_study
from paretone.ship import PickReport
from paretone.spaces import SearchSpace, SpaceConfig
from tests.helpers import make_driver, run_cli, synthetic_profile

pytestmark = pytest.mark.slow  # searches with Ray, fine-tunes
STUDENT = "lstm:hidden=8;epochs=1"
CHUNK = 320  # 40 ms at 8 kHz: four 10 ms hops


@pytest.fixture(scope="module")
def study(tiny_teacher, tmp_path_factory):
    root = tmp_path_factory.mktemp("chunked")
    space = SpaceConfig.from_dict({"students": [STUDENT]})
    teacher = load_model(tiny_teacher).model
    operators = dict(SearchSpace.build(teacher.structure(), space, teacher=teacher.config).params)
    profile = synthetic_profile(
        teacher, root, "stream-device", ns_per_mac=1.0, operators=operators, chunk_samples=CHUNK
    )
    driver = make_driver(
        tiny_teacher, profile, root, study="c", trials=3, space=space, chunk_ms=40.0,
        budget=Budget(latency_fraction=1.0),
    )  # fmt: skip
    driver.run()
    return driver


def test_a_chunk_study_predicts_one_call_per_chunk(study):
    loaded = load_study(study.settings.study, study.settings.storage)
    assert StudyInfo.read(loaded, study.settings.folder).chunk_samples == CHUNK
    done = [t for t in loaded.get_trials() if t.user_attrs.get("fine_tuned")]
    students = [t for t in done if t.params.get("student") == STUDENT]
    teachers = [t for t in done if t.params.get("student") != STUDENT]
    assert students and teachers
    # Per chunk, a clip model runs its whole window; the streaming student only the chunk's frames.
    fastest_teacher = min(t.user_attrs["predicted"]["latency_ms"] for t in teachers)
    assert students[0].user_attrs["predicted"]["latency_ms"] < fastest_teacher / 3


def test_pick_ships_the_stream_measured_per_chunk_beside_its_clip_model(study, fsdd, tmp_path):
    out = tmp_path / "picked"
    result = run_cli(
        "pick", "--study", study.settings.study, "--storage", study.settings.storage,
        "--latency-limit-fraction", "0.5", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = PickReport.read(out / "pick.json")
    facts = report.streaming
    assert facts is not None and facts.mode == "stream" and facts.chunk_samples == CHUNK
    assert STREAM_INPUT in {i.name for i in onnx.load(str(out / "model.onnx")).graph.input}
    assert (out / "model-clip.onnx").is_file()
    # The limit holds the 95th percentile of one chunk's compute, measured beside the teacher's window.
    assert facts.p95_ms <= report.limit_ms and facts.real_time_factor < 1
    assert facts.algorithmic_delay_ms == pytest.approx(40.0)
    assert facts.state_bytes == 4 * ((256 - 80) + 2 * 8)  # STFT overlap, h and c of 8 units
    # The stream computes what the clip model computes on the same clips (up to float rounding).
    assert facts.stream_vs_clip_max_abs_diff is not None and facts.stream_vs_clip_max_abs_diff < 1e-3
    card = (out / "MODEL_CARD.md").read_text()
    assert "On a stream" in card and "40 ms" in card

    clip = next(fsdd.glob("recordings/*.wav"))
    ran = run_cli("run-model", str(out / "model.onnx"), str(clip), "--stream")
    assert ran.returncode == 0, ran.stderr
    records = [json.loads(line) for line in ran.stdout.splitlines()]
    assert records[-1]["kind"] == "summary" and records[-1]["mode"] == "stream"
    assert {r["kind"] for r in records} <= {"segment", "event", "summary"}
