"""Calibration for real (tiny teacher, one pass), the remote kit in a bare process, import, refit."""

import dataclasses
import json
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from paretone.cli import cli
from paretone.compress import Prune
from paretone.errors import ConfigError
from paretone.hw_models import (
    ANCHORS,
    SMALL_KEPT,
    DeviceProfile,
    LatencyModel,
    MemoryModel,
    ModelMeasurement,
    calibrate,
    calibration_kernels,
    export_model,
    group_of,
    import_results,
    probe_speed,
    profile_path,
    random_models,
    validate,
    write_kit,
)
from paretone.models import ASTConfig, build_model
from paretone.runtime import MEMORY_PROCESSES, _kit_runner, run_kit_in_fresh_process

pytestmark = pytest.mark.slow  # calibrates for real

TINY_AST = ASTConfig.uniform(num_classes=10, dim=32, depth=1, heads=2, mlp_ratio=2)


@pytest.fixture(scope="module")
def teacher():
    return build_model(TINY_AST).eval()


@pytest.fixture(scope="module")
def profile_dir(tmp_path_factory, teacher):
    directory = tmp_path_factory.mktemp("devices")
    old = profile_path(directory, "here")  # an older paretone's profile: kept aside, not extended
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps({"format": "paretone.device-profile/1", "device": "here", "kernels": []}))
    with pytest.raises(ConfigError, match=r"written by an older paretone.*re-run `paretone calibrate`"):
        DeviceProfile.load(old)
    with pytest.MonkeyPatch.context() as patch:  # measured in a fresh process, as `pick` measures
        patch.setattr(_kit_runner, "run", _not_in_this_process)
        calibrate(device="here", profile_dir=directory, teacher=teacher, models=8, passes=1)
    return directory


def _not_in_this_process(*args, **kwargs):
    raise AssertionError("the kit was measured in the calibrating process")


def test_calibration_writes_a_profile_that_covers_every_student(profile_dir, teacher):
    profile = DeviceProfile.load(profile_path(profile_dir, "here"))
    assert set(profile.kernels) == {k.key for k in calibration_kernels(TINY_AST)}
    assert len(profile.models) == 8 and all(
        m.peak_bytes and m.peak_bytes > 0 for m in profile.models.values()
    )
    # ONNX Runtime's allocator peak beside it: at least the model's stored weights, all in its arena
    assert all(m.tensor_peak_bytes > 0.5 * m.file_bytes for m in profile.models.values())
    assert profile.fingerprint["threads"] == 1 and profile.fingerprint["onnxruntime"]
    assert not (profile_dir / "here" / "kit-work").exists()  # the work folder is cleaned up
    kept = json.loads((profile_dir / "here" / "profile.old.json").read_text())
    assert kept["format"] == "paretone.device-profile/1"  # the outdated profile was kept aside
    model = LatencyModel(profile)
    for student in random_models(teacher, 5, seed=77, prefix="unseen"):
        prediction = model.predict(student.kernels)
        assert prediction.complete and prediction.coverage == 1.0 and prediction.latency_ms > 0
        memory = MemoryModel(profile).predict(student.kernels)
        assert memory.peak_bytes is not None and memory.tensor_peak_bytes > 0


def test_every_fourth_random_model_is_small_so_the_fit_reaches_the_floor():
    teacher = build_model(ASTConfig.uniform(num_classes=10, dim=64, depth=2, heads=4)).eval()
    structure = teacher.structure()
    models = random_models(teacher, 8, seed=0, prefix="calibration")
    for i, model in enumerate(models):
        prune = model.recipe.get(Prune)
        kept = {**prune.channels, **{name: n / 4 for name, n in prune.heads.items()}}
        if i in (3, 7):  # every unit pruned to at most a quarter
            assert set(kept) == {u.name for u in structure.prunable} and max(kept.values()) <= SMALL_KEPT
        else:  # drawn freely: some unit keeps more than a quarter, or is not pruned at all
            assert len(kept) < len(structure.prunable) or max(kept.values()) > SMALL_KEPT


def test_rerunning_calibration_extends_instead_of_remeasuring(profile_dir, teacher):
    before = DeviceProfile.load(profile_path(profile_dir, "here"))
    summary = calibrate(device="here", profile_dir=profile_dir, teacher=teacher, models=9, passes=1)
    after = DeviceProfile.load(profile_path(profile_dir, "here"))
    assert (summary.kernels_added, summary.models_added) == (0, 1)
    assert len(after.models) == 9
    first = next(iter(before.kernels))
    assert after.kernels[first].latency_ms == before.kernels[first].latency_ms  # kept, not re-measured


def test_file_bytes_are_predicted_within_one_percent(profile_dir, teacher, tmp_path):
    memory = MemoryModel(DeviceProfile.load(profile_path(profile_dir, "here")))
    for i, student in enumerate(random_models(teacher, 3, seed=99, prefix="held-out")):
        path = tmp_path / f"{i}.onnx"
        export_model(teacher, student.recipe, path)
        predicted = memory.predict(student.kernels).model_bytes
        assert abs(predicted / path.stat().st_size - 1) < 0.01


def test_unmeasured_kernels_are_reported_not_skipped(profile_dir):
    model = LatencyModel(DeviceProfile.load(profile_path(profile_dir, "here")))
    wider = build_model(ASTConfig.uniform(num_classes=10, dim=48, depth=1, heads=2, mlp_ratio=2))
    kernels = random_models(wider, 1, seed=0, prefix="other")[0].kernels
    prediction = model.predict(kernels)
    assert not prediction.complete and 0 < prediction.coverage < 1
    assert any("dim=48" in key or "in=48" in key or "out=48" in key for key in prediction.uncovered)
    with pytest.raises(ConfigError, match="run `paretone calibrate --device here --teacher DIR`"):
        prediction.require_complete("here")


def test_refit_with_whole_model_measurements_moves_predictions(profile_dir, teacher):
    profile = DeviceProfile.load(profile_path(profile_dir, "here"))
    student = random_models(teacher, 1, seed=123, prefix="search")[0]
    before = LatencyModel(profile).predict(student.kernels).latency_ms
    slow = [
        ModelMeasurement(f"slow-{m.name}", m.kernels, m.latency_ms * 3, m.file_bytes, source="search")
        for m in profile.models.values()
    ]
    profile.models.clear()
    profile.add_models(slow)
    after = LatencyModel(profile).predict(student.kernels).latency_ms
    assert after == pytest.approx(3 * before, rel=0.25)


def test_calibration_records_a_speed_probe_with_a_sentinel_per_group(profile_dir):
    profile = DeviceProfile.load(profile_path(profile_dir, "here"))
    groups = {group_of(m.kernel) for m in profile.kernels.values()}
    assert [s.group for s in profile.probe] == sorted(groups)  # one each, the second run added none
    probe = probe_speed(profile, profile_dir / "here")
    assert set(probe.factors) == groups and all(0.3 < f < 3 for f in probe.factors.values())
    assert probe.seconds < 10  # a few passes of a few runs per sentinel
    # A device twice as slow as when calibrated: simulated by halving the recorded reference times.
    profile.probe = [dataclasses.replace(s, latency_ms=s.latency_ms / 2) for s in profile.probe]
    assert probe_speed(profile, profile_dir / "here").overall == pytest.approx(2 * probe.overall, rel=0.5)


def test_validation_reports_errors_and_proxies(profile_dir, teacher):
    profile = DeviceProfile.load(profile_path(profile_dir, "here"))
    report = validate(
        profile, teacher, models=3, passes=1, memory=False, drift_models=2, probe_dir=profile_dir / "here"
    )
    assert report.latency_speed_corrected is not None and set(report.speed["factors"]) == {
        s.group for s in profile.probe
    }
    assert report.within_interval is not None and 0 <= report.within_interval <= 1
    # the anchors were timed inside the passes too: every model's prediction at its own pass's speed
    assert report.latency_anchored_in_pass is not None
    assert all(r["anchored_in_pass_latency_ms"] > 0 for r in report.rows)
    assert report.coverage == 1.0 and len(report.rows) == 3
    # two calibration models re-timed beside them: the machine's drift, and the refit figures
    assert report.drift is not None and 0.2 < report.drift < 5 and report.latency_after_refit is not None
    assert report.model_bytes.within_5pct == 1.0  # stored bytes are exact to well under 1%
    assert 0 <= report.latency.within_10pct <= 1 and report.latency.rmspe_pct >= 0
    assert report.peak_bytes is None
    names = {row["name"] for row in report.rows}
    assert not names & set(profile.models)  # held out: never used for fitting


def test_validation_reports_both_memory_measures_beside_their_own_spread(profile_dir, teacher):
    profile = DeviceProfile.load(profile_path(profile_dir, "here"))
    report = validate(profile, teacher, models=2, passes=1, memory=True, drift_models=0)
    assert report.peak_bytes is not None and report.tensor_peak_bytes is not None
    spread = report.memory_spread
    assert spread.processes == MEMORY_PROCESSES and spread.peak_range_bytes_median >= 0
    assert spread.tensor_peak_range_bytes_median == 0  # the allocator's peak: the same every time
    for row in report.rows:
        assert row["tensor_peak_bytes"] > 0 and row["predicted_tensor_peak_bytes"] > 0
        assert row["peak_range_bytes"] >= 0 and row["tensor_peak_range_bytes"] == 0


BLOCK_HEAVY_IMPORTS = textwrap.dedent(
    """
    import runpy, sys
    for name in ("torch", "paretone", "sklearn", "onnx", "scipy", "optuna", "ray"):
        sys.modules[name] = None  # importing any of them now raises ImportError
    sys.argv = ["run_kit.py", "--out", sys.argv[1]]
    runpy.run_path("run_kit.py", run_name="__main__")
    """
)


def test_kit_runs_with_only_onnxruntime_and_numpy_and_imports(tmp_path, teacher):
    kernels = calibration_kernels(TINY_AST)[:12]
    kit = write_kit(
        tmp_path / "kit",
        kernels=kernels,
        teacher=teacher,
        models=random_models(teacher, 1, seed=0, prefix="calibration"),
        threads=1,
        passes=2,
        runs=3,
    )
    results = tmp_path / "results.json"
    subprocess.run(
        [sys.executable, "-c", BLOCK_HEAVY_IMPORTS, str(results)], cwd=kit, check=True, capture_output=True
    )
    summary = import_results(results, device="edge", profile_dir=tmp_path / "devices")
    assert (summary.kernels_added, summary.models_added) == (12, 1)
    profile = DeviceProfile.load(summary.profile)
    assert profile.baseline["latency_ms"] > 0 and profile.baseline["peak_bytes"] > 0
    assert all(m.tensor_peak_bytes > 0 for m in profile.models.values())  # the bare kit records it too

    data = json.loads(results.read_text())
    data["fingerprint"]["onnxruntime"] = "0.0.1"
    results.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"onnxruntime='0\.0\.1'.*calibrate under another --device"):
        import_results(results, device="edge", profile_dir=tmp_path / "devices")
    out = CliRunner().invoke(
        cli,
        [
            "calibrate",
            "--device",
            "edge",
            "--import",
            str(results),
            "--profile-dir",
            str(tmp_path / "devices"),
        ],
    )
    assert out.exit_code == 2 and out.output.count("\n") == 1 and "onnxruntime" in out.output


def test_local_calibration_measures_the_kit_in_a_fresh_process(tmp_path, teacher, monkeypatch):
    kit = write_kit(
        tmp_path / "kit",
        kernels=calibration_kernels(TINY_AST)[:4],
        teacher=teacher,
        models=random_models(teacher, 1, seed=0, prefix="calibration"),
        threads=1,
        passes=2,
        runs=3,
    )
    monkeypatch.setattr(_kit_runner, "run", _not_in_this_process)
    seen = []
    results = run_kit_in_fresh_process(
        kit, tmp_path / "results.json", progress=lambda *step: seen.append(step)
    )
    entries = json.loads((kit / "manifest.json").read_text())["entries"]
    total = 2 * len(entries) + sum(1 for e in entries if e.get("memory"))
    assert seen == [(done, total) for done in range(1, total + 1)]  # every step, in order
    assert set(results["measurements"]) == {e["id"] for e in entries}

    broken = kit / entries[0]["file"]
    broken.write_bytes(b"not an onnx model")
    with pytest.raises(RuntimeError, match=r"measuring the kit failed: .*INVALID_PROTOBUF"):
        run_kit_in_fresh_process(kit, tmp_path / "again.json")  # the child's own error, not a hang


def test_broken_profiles_and_results_are_refused_with_advice(tmp_path):
    bad = tmp_path / "devices" / "x" / "profile.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="re-run `paretone calibrate`"):
        DeviceProfile.load(bad)
    with pytest.raises(ConfigError, match="no such file; create the device profile"):
        DeviceProfile.load(tmp_path / "missing.json")
    (tmp_path / "r.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ConfigError, match=r"run_kit\.py"):
        import_results(tmp_path / "r.json", device="y", profile_dir=tmp_path / "devices")
    with pytest.raises(ConfigError, match="device name"):
        profile_path(tmp_path, "../escape")


def test_the_probe_times_whole_calibration_models_as_anchors(profile_dir):
    profile = DeviceProfile.load(profile_path(profile_dir, "here"))
    names = [a.name for a in profile.anchors]
    assert names and set(names) <= set(profile.models)
    latencies = [profile.models[n].latency_ms for n in names]
    assert latencies == sorted(latencies)  # spread over the range, fastest first
    assert len(names) == min(ANCHORS, sum(m.recipe is not None for m in profile.models.values()))
    probe = probe_speed(profile, profile_dir / "here")
    assert probe.anchor_factor is not None and 0.3 < probe.anchor_factor < 3
    anchored = probe.anchored()
    assert set(anchored.factors.values()) == {probe.anchor_factor}  # one whole-model speed for all
    # A device twice as slow for whole models: halve the anchors' references, the sentinels' not.
    profile.anchors = [dataclasses.replace(a, latency_ms=a.latency_ms / 2) for a in profile.anchors]
    slower = probe_speed(profile, profile_dir / "here")
    assert slower.anchor_factor == pytest.approx(2 * probe.anchor_factor, rel=0.5)
    assert slower.overall == pytest.approx(probe.overall, rel=0.5)


def test_a_missing_anchor_file_is_refused_with_how_to_fix_it(profile_dir, tmp_path):
    import shutil

    profile = DeviceProfile.load(profile_path(profile_dir, "here"))
    copy = tmp_path / "here"
    shutil.copytree(profile_dir / "here", copy)
    (copy / "probe" / f"anchor-{profile.anchors[0].name}.onnx").unlink()
    with pytest.raises(ConfigError, match="anchor model is missing; re-run `paretone calibrate"):
        probe_speed(profile, copy)


def test_a_search_watches_the_speed_of_a_device_calibrated_here_and_only_here(profile_dir):
    from paretone.search import SpeedWatch

    profile = DeviceProfile.load(profile_path(profile_dir, "here"))
    probe = SpeedWatch.of_profile(profile, profile_dir / "here").current()  # timed for real
    assert probe is not None and set(probe.factors) == {s.group for s in profile.probe}
    assert 0.3 < probe.overall < 3 and 0 < probe.seconds < 30
    elsewhere = dataclasses.replace(profile, fingerprint={**profile.fingerprint, "cpu": "another CPU"})
    watch = SpeedWatch.of_profile(elsewhere, profile_dir / "here")
    assert watch.current() is None and "is not this machine" in watch.log().not_probed
