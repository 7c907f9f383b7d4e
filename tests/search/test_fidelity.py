"""Multi-fidelity: the promotion rule, and a real search that screens at one epoch and promotes."""

from __future__ import annotations

import optuna
import pytest

from paretone.errors import ConfigError
from paretone.search import Fidelity, candidates, full_fidelity, load_study, make_storage
from tests.helpers import invoke_cli, is_one_line, make_driver


def test_the_best_fraction_of_screening_scores_is_promoted() -> None:
    third = Fidelity(screen_epochs=1, promote_fraction=1 / 3)
    assert third.promotes(0.5, [])  # the first candidate: nothing to rank against
    assert third.promotes(0.6, [0.5]) and not third.promotes(0.4, [0.5])  # one slot in two
    assert not third.promotes(0.55, [0.5, 0.6])  # second of three: one slot
    scores = [0.1, 0.2, 0.3, 0.4, 0.5]
    assert third.promotes(0.45, scores) and not third.promotes(0.35, scores)  # 2 slots of 6: 0.5 and it
    assert Fidelity(screen_epochs=1, promote_fraction=1).promotes(0.0, scores)  # everything
    assert third.first_epochs(5) == 1 and third.first_epochs(1) == 1  # no screening stage for 1 epoch
    assert Fidelity().first_epochs(5) == 5 and Fidelity().flags() == []
    assert third.flags() == ["--screen-epochs 1", "--promote-fraction 0.333333"]


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
    driver = make_driver(tiny_teacher, synthetic_device[0], tmp_path, trials=6, epochs=2, fidelity=fidelity)
    summary = driver.run()
    study = optuna.load_study(study_name="s", storage=make_storage(driver.settings.storage))
    tuned = [t for t in study.get_trials() if t.user_attrs.get("fine_tuned")]
    assert len(tuned) == summary.fine_tuned == 6
    earlier: list[float] = []
    for t in tuned:  # one worker: trials finish in number order, each ranked against those before it
        screen = t.user_attrs["screen_score"]
        promoted = fidelity.promotes(screen, earlier)
        earlier.append(screen)
        assert t.user_attrs["fidelity_epochs"] == (2 if promoted else 1)
        assert t.user_attrs["result"]["epochs_run"] == t.user_attrs["fidelity_epochs"]
        assert full_fidelity(t) is promoted
        if not promoted:
            assert t.values[0] == screen  # told with what it measured, marked as screening only
    partial = [t.number for t in tuned if not full_fidelity(t)]
    assert summary.partial_fidelity == len(partial) and 0 < len(partial) < 6  # both kinds happened
    pool = candidates(load_study("s", driver.settings.storage), tmp_path)
    assert {c.trial for c in pool} == {t.number for t in tuned if full_fidelity(t)}
