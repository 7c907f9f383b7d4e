"""The search for real: a trained tiny teacher, real FSDD audio, real local Ray, real Optuna storage.

Latency predictions come from a device profile whose kernel times are set to a known function of
their MACs, so which candidates break the budget is deterministic on any machine; everything else
(fine-tuning, storage, Ray, resume) is the production path.
"""

from __future__ import annotations

import dataclasses
import os
import time

import optuna
import pytest
from optuna.trial import TrialState

from paretone.hw_models import SpeedProbe, group_of
from paretone.search import Budget, Driver, SpeedWatch, candidates, load_study, make_storage
from tests.conftest import SYNTHETIC as DEVICE
from tests.helpers import invoke_cli, make_driver

pytestmark = pytest.mark.slow  # starts Ray


@pytest.fixture(scope="module")
def teacher(tiny_teacher):
    return tiny_teacher


@pytest.fixture(scope="module")
def profile(synthetic_device) -> tuple:
    return synthetic_device


def _driver(teacher, profile, tmp_path, **overrides) -> Driver:
    return make_driver(teacher, profile[0], tmp_path, **overrides)


def _trials(storage: str, study: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study, storage=make_storage(storage)).get_trials()


def test_search_fine_tunes_feasible_and_tells_infeasible_cheaply(
    teacher, profile, tmp_path, monkeypatch, local_ray
):
    groups = {group_of(m.kernel) for m in profile[0].kernels.values()}
    as_calibrated = SpeedProbe(dict.fromkeys(groups, 1.0), dict.fromkeys(groups, 0.0), 0.25)
    speed = SpeedWatch(probe=lambda: as_calibrated, interval_s=1e-6)  # probes before every batch
    driver = _driver(teacher, profile, tmp_path, trials=6, budget=Budget(latency_fraction=0.5), speed=speed)
    # the warm starts and their ladder fit by construction: 3 sampled trials after them
    n = len(driver.warm_starts.starts()) + 3
    driver.settings = dataclasses.replace(driver.settings, trials=n)
    summary = driver.run()
    assert summary.speed.probes > 2 and summary.speed.seconds == 0.25 * summary.speed.probes
    trials = _trials(driver.settings.storage, "s")
    assert summary.fine_tuned == n and len(trials) == n + summary.screened  # screening is not counted
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert driver.study.metric_names == ["val_accuracy", "latency_ms", "peak_bytes"]  # named objectives
    for t in trials:
        kernels = driver.space.recipe(t.params).kernels(driver.teacher_config)
        assert t.user_attrs["predicted"]["latency_ms"] == driver.costs.latency.predict(kernels).latency_ms
        over = t.constraints["latency_ms"] > 0
        assert t.values[1] == t.user_attrs["predicted"]["latency_ms"]
        low, high = t.user_attrs["predicted"]["latency_interval_ms"]  # 95%, from the profile's residuals
        assert low <= t.values[1] <= high
        straddles = low <= driver.budget.latency_ms < high
        assert t.user_attrs["predicted"]["straddles_budget"] is straddles
        assert t.user_attrs["fine_tuned"] is (not over)
        folder = tmp_path / "runs" / "s" / "trials" / f"{t.number:05d}"
        assert (folder / "weights.safetensors").is_file() is (not over)
        if not over:
            assert (folder / "recipe.json").is_file() and 0 <= t.values[0] <= 1
    assert summary.screened > 0 and sum(t.user_attrs["fine_tuned"] for t in trials) == n  # both kinds
    assert 0 < summary.driver_seconds < summary.seconds  # the driver's own time, timed apart from waiting
    warm = [t for t in trials if t.user_attrs.get("warm_start")]
    assert warm and all(t.constraints["latency_ms"] <= 0 for t in warm)  # warm starts fit the budget
    # artifact paths are stored relative to the study's folder: readable from anywhere
    tuned = [t for t in trials if t.user_attrs["fine_tuned"]]
    assert all(not os.path.isabs(t.user_attrs["student_dir"]) for t in tuned)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    pool = candidates(load_study("s", driver.settings.storage), tmp_path)
    assert all((c.student / "weights.safetensors").is_file() for c in pool) and len(pool) == n


def test_resume_continues_to_the_requested_count_and_retries_stale_trials_once(
    teacher, profile, tmp_path, local_ray
):
    storage = f"sqlite:///{tmp_path / 'resume.db'}"
    first = _driver(teacher, profile, tmp_path, study="r", storage=storage, trials=2)
    first.run()
    kept = {t.number: t.values for t in _trials(storage, "r")}
    # a driver that died mid-trial: a RUNNING trial whose heartbeat stopped long ago
    study = optuna.load_study(study_name="r", storage=make_storage(storage))
    orphan = study.ask(first.space.distributions())
    orphan.set_user_attr("heartbeat", time.time() - 3600)
    resumed = _driver(teacher, profile, tmp_path, study="r", storage=storage, trials=4, resume=True)
    resumed.run()
    trials = _trials(storage, "r")
    for number, values in kept.items():
        assert trials[number].values == values  # finished trials are kept as they were
    dead = trials[orphan.number]
    assert dead.state == TrialState.FAIL and "no heartbeat" in dead.user_attrs["fail_reason"]
    retries = [t for t in trials if t.user_attrs.get("retry_of") == orphan.number]
    assert len(retries) == 1 and retries[0].params == dead.params and retries[0].state == TrialState.COMPLETE
    tuned = [t for t in trials if t.state == TrialState.COMPLETE and t.user_attrs["fine_tuned"]]
    assert resumed.finished() == 4 and len(tuned) == 4


def test_journal_storage_and_trial_errors_fail_with_a_reason(teacher, profile, tmp_path, local_ray):
    storage = f"journal:{tmp_path / 'study.log'}"
    driver = _driver(
        teacher, profile, tmp_path, study="j", storage=storage, trials=2, budget=Budget(latency_fraction=1.0)
    )
    original = driver._fine_tune

    def broken_recipe_once(entry, worker):
        if not hasattr(broken_recipe_once, "done"):
            broken_recipe_once.done = True
            bad = {"format": "paretone.recipe/1", "heads": {"blocks.0.attn.heads": 99}}
            return original(dataclasses.replace(entry, recipe=bad), worker)
        return original(entry, worker)

    driver._fine_tune = broken_recipe_once
    driver.run()
    trials = _trials(storage, "j")
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == 1 and "ConfigError" in failed[0].user_attrs["fail_reason"]
    assert failed[0].user_attrs["retried"] is False  # an error in the trial itself is not retried
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 1 and driver.finished() == 2


def test_cli_refuses_bad_budgets_and_studies_in_one_line(teacher, profile, tmp_path):
    _, profiles = profile
    common = ("search", "--teacher", str(teacher), "--device", DEVICE, "--profile-dir", str(profiles))
    storage = ("--storage", f"sqlite:///{tmp_path / 'c.db'}")
    for args, needle in [
        (("--latency-budget-ms", "-3"), "must be a positive number"),
        (("--latency-budget-ms", "0.000001"), "unreachable"),
        (("--probe-every-s", "-1"), "--probe-every-s must be seconds >= 0"),
        (("--study", "missing", "--resume"), "nothing to resume"),
        (("--device", "phone"), "device 'phone' has no profile"),
    ]:
        result = invoke_cli(*common, *storage, *args, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("paretone: error: ") and needle in last and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written, not even a database


def test_a_search_can_choose_a_new_recurrent_student_beside_the_pruned_teacher(teacher, tmp_path, local_ray):
    from paretone.compress import load_student
    from paretone.models import load_model
    from paretone.spaces import SearchSpace, SpaceConfig
    from tests.helpers import synthetic_profile

    space = SpaceConfig.from_dict({"students": ["lstm:hidden=8;epochs=1"]})
    loaded = load_model(teacher).model
    operators = dict(SearchSpace.build(loaded.structure(), space, teacher=loaded.config).params)
    profile = synthetic_profile(
        loaded, tmp_path / "devices", "with-students", ns_per_mac=1.0, operators=operators
    )
    driver = make_driver(
        teacher, profile, tmp_path, trials=4, space=space, budget=Budget(latency_fraction=0.7)
    )
    driver.run()
    done = [t for t in _trials(driver.settings.storage, "s") if t.user_attrs.get("fine_tuned")]
    students = [t for t in done if t.params.get("student") == "lstm:hidden=8;epochs=1"]
    assert students, [t.params.get("student") for t in done]  # its warm start comes second
    folder = tmp_path / "runs" / "s" / "trials" / f"{students[0].number:05d}"
    student, recipe = load_student(folder)
    assert student.config.family == "lstm" and student.config.hidden == (8,)
    assert recipe.to_dict()["operators"]["student"]["family"] == "lstm"
    assert students[0].user_attrs["predicted"]["latency_ms"] < driver.costs.teacher_latency_ms
