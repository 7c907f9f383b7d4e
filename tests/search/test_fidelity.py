"""Multi-fidelity: the promotion rule, and a real search that screens at one epoch and promotes."""

from __future__ import annotations

import optuna
import pytest

from paretone.errors import ConfigError
from paretone.search import (
    Fidelity,
    Predicted,
    Screened,
    candidates,
    fine_tune_seconds,
    full_fidelity,
    load_study,
    make_storage,
)
from paretone.search._fidelity import front_indices
from tests.helpers import invoke_cli, is_one_line, make_driver


def _on_the_slow_end(*scores: float) -> list[Screened]:
    """Screening results that trade nothing: the same predicted cost, so only the metric ranks."""
    return [Screened(score, latency_ms=1.0, peak_bytes=1e6) for score in scores]


def test_the_best_fraction_of_screening_results_is_promoted() -> None:
    third = Fidelity(screen_epochs=1, promote_fraction=1 / 3)
    (first,) = _on_the_slow_end(0.5)
    assert third.promotes(first, [])  # the first candidate: nothing to rank against
    better, worse = _on_the_slow_end(0.6, 0.4)
    assert third.promotes(better, [first]) and not third.promotes(worse, [first])  # one slot in two
    assert not third.promotes(Screened(0.55, 1.0, 1e6), _on_the_slow_end(0.5, 0.6))  # one slot in 3
    scores = _on_the_slow_end(0.1, 0.2, 0.3, 0.4, 0.5)  # 6 with the candidate: 2 slots
    assert third.promotes(Screened(0.45, 1.0, 1e6), scores)
    assert not third.promotes(Screened(0.35, 1.0, 1e6), scores)
    assert Fidelity(screen_epochs=1, promote_fraction=1).promotes(Screened(0.0, 1.0, 1e6), scores)
    assert third.first_epochs(5) == 1 and third.first_epochs(1) == 1  # no screening stage for 1 epoch
    assert Fidelity().first_epochs(5) == 5 and Fidelity().flags() == []
    assert third.flags() == ["--screen-epochs 1", "--promote-fraction 0.333333"]


def test_promotion_ranks_by_pareto_front_so_fast_candidates_are_not_starved() -> None:
    third = Fidelity(screen_epochs=1, promote_fraction=1 / 3)
    accurate = _on_the_slow_end(0.9, 0.85, 0.8, 0.75, 0.7)
    fast_and_worse = Screened(0.3, latency_ms=0.2, peak_bytes=1e6)  # dominated by none: promoted
    assert third.promotes(fast_and_worse, accurate)
    slower_and_worse = Screened(0.3, latency_ms=1.5, peak_bytes=1e6)  # dominated by all five
    assert not third.promotes(slower_and_worse, accurate)
    smaller = Screened(0.3, latency_ms=1.0, peak_bytes=5e5)  # memory is an objective too
    assert third.promotes(smaller, accurate)
    # dominated ones rank by front first: second-front members go before a third-front one
    front_1 = [Screened(0.6, 0.5, 1e6), Screened(0.5, 0.4, 1e6)]
    ranked = [Screened(0.7, 0.45, 1e6), Screened(0.65, 0.35, 1e6), *front_1]  # front 0 above them
    assert front_indices([*ranked, Screened(0.55, 0.6, 1e6)]) == [0, 0, 1, 1, 2]
    half = Fidelity(screen_epochs=1, promote_fraction=0.5)  # 2 slots in 4
    others = [Screened(0.3, 0.1, 1e6), Screened(0.9, 0.5, 1e6), Screened(0.1, 3.0, 1e6)]
    # on the second front: behind both front-0 members though it out-scores one (by metric: promoted)
    assert not half.promotes(Screened(0.8, 0.6, 1e6), others)
    dominated = [Screened(0.9, 0.5, 1e6), Screened(0.1, 3.0, 1e6), Screened(0.05, 4.0, 1e6)]
    assert half.promotes(Screened(0.8, 0.6, 1e6), dominated)  # only the first is ahead of it


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"screen_epochs": -1}, "--screen-epochs must be a whole number >= 0"),
        ({"screen_epochs": 1.5}, "--screen-epochs must be a whole number >= 0"),
        ({"screen_epochs": True}, "--screen-epochs must be a whole number >= 0"),
        ({"promote_fraction": 0}, "--promote-fraction must be a number in (0, 1]"),
        ({"promote_fraction": 1.5}, "--promote-fraction must be a number in (0, 1]"),
        ({"promote_fraction": float("nan")}, "--promote-fraction must be a number in (0, 1]"),
    ],
)
def test_bad_fidelity_settings_are_refused_in_one_line(settings, message) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("]", r"\]")) as caught:
        Fidelity(**settings)
    assert is_one_line(caught.value)


def test_cli_refuses_a_bad_promote_fraction_before_any_work(tmp_path) -> None:
    flags = ("--study", "x", "--screen-epochs", "1", "--promote-fraction", "2")
    result = invoke_cli("search", *flags, cwd=tmp_path)
    assert result.returncode != 0 and "--promote-fraction must be a number in (0, 1]" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "runs").exists()


@pytest.mark.slow  # starts Ray, fine-tunes
def test_a_search_screens_at_one_epoch_and_fronts_read_promoted_trials_only(
    tiny_teacher, synthetic_device, tmp_path, local_ray
) -> None:
    fidelity = Fidelity(screen_epochs=1, promote_fraction=0.5)
    # 10 trials: with three objectives the first few are often all non-dominated (all promoted)
    driver = make_driver(tiny_teacher, synthetic_device[0], tmp_path, trials=10, epochs=2, fidelity=fidelity)
    summary = driver.run()
    study = optuna.load_study(study_name="s", storage=make_storage(driver.settings.storage))
    tuned = [t for t in study.get_trials() if t.user_attrs.get("fine_tuned")]
    assert len(tuned) == summary.fine_tuned == 10
    earlier: list[Screened] = []
    for t in tuned:  # one worker: trials finish in number order, each ranked against those before it
        predicted = Predicted.of(t)
        screen = Screened(t.user_attrs["screen_score"], predicted.latency_ms, predicted.peak_bytes)
        promoted = fidelity.promotes(screen, earlier)
        earlier.append(screen)
        assert t.user_attrs["fidelity_epochs"] == (2 if promoted else 1)
        assert t.user_attrs["result"]["epochs_run"] == t.user_attrs["fidelity_epochs"]
        assert full_fidelity(t) is promoted
        stage_s, screen_s = t.user_attrs["result"]["seconds"], t.user_attrs["screen_seconds"]
        if not promoted:
            assert t.values[0] == screen.score  # told with what it measured, marked as screening only
            assert screen_s == stage_s == fine_tune_seconds(t)
        else:  # its cost counts both stages (what equal-CPU-second comparisons add up)
            assert fine_tune_seconds(t) == pytest.approx(stage_s + screen_s)
    partial = [t.number for t in tuned if not full_fidelity(t)]
    assert summary.partial_fidelity == len(partial) and 0 < len(partial) < 10  # both kinds happened
    pool = candidates(load_study("s", driver.settings.storage), tmp_path)
    assert {c.trial for c in pool} == {t.number for t in tuned if full_fidelity(t)}
