"""Does the search beat the simple rules? Samplers with and without allocations, on speaker-disjoint
FSDD splits, at equal fine-tuning CPU-seconds, budget 25% of the teacher's latency.

    python benchmarks/search.py                  # 2 splits x 3 seeds x 9 methods, 12 trials of 2 epochs
    python benchmarks/search.py --scale medium   # 1 split, 1 seed, 9 methods, 8 trials of 1 epoch
    python benchmarks/search.py --quick          # 1 split, 1 seed, 5 methods, 4 trials (< 10 min)
    python benchmarks/search.py --scale seeds    # 2 splits x 3 seeds x 9 methods, 8 trials of 1 epoch
    python benchmarks/search.py --scale seeds-long  # the same, 5 methods, 24 trials, 3 more test seeds
    python benchmarks/search.py --scale mixtures # seeds-long on the multi-label FSDD mixtures (mAP)
    python benchmarks/search.py --scale fidelity # NSGA-II with and without multi-fidelity, 3 seeds
    python benchmarks/search.py --scale throughput  # only the 1- and 2-worker runs (16 trials each)
    python benchmarks/search.py --scale throughput --storage sqlite  # the same on SQLite
    python benchmarks/search.py --scale throughput-long  # 12 trials of 25 epochs (about a minute each)
    python benchmarks/search.py --scale seeds-long --budget-fraction 0.15 --methods uniform tpe
        # any scale at another budget, with some of its methods (the simple rules' ratios need them all)

Methods: the uniform rule at its strongest (one kept fraction and one format everywhere, over every
front-end choice: the largest that fits, as many as the others fine-tune), random search with
screening, plain NSGA-II (as Optuna ships it, with screening but without warm starts), NSGA-II /
multivariate TPE / GP (each as `paretone search` runs it: the uniform warm starts and their ladder
below the budget first), each also
with the sensitivity allocations (`--allocate`); NSGA-II with
multi-fidelity (`--screen-epochs 1`: every candidate fine-tuned one epoch, the best third promoted
to the full epochs; twice the trials, cut to the same CPU-seconds like every method).
- Equal CPU-seconds: every run fine-tunes the same number of trials; each (split, seed) is then
  scored on the trials that finished within the smallest total fine-tuning time of its methods
  (completion order; a promoted trial's screening counts), so a method whose candidates train
  faster gets no extra trials and one whose candidates train slower is not rewarded for fewer.
- Hypervolume of the feasible front (validation metric x predicted latency; reference: metric 0 at
  the budget), and of its members scored on the test voices (`test_hypervolume`); the best
  feasible validation metric and the test metric of that trial, its ONNX file
  exported with real kernels and measured beside the budget. The simple rules the default must beat
  are the uniform rule, plain NSGA-II and random (SIMPLE).
- What `pick` would ship: of each method's validation front, best first, up to `pick`'s 3 attempts,
  the first measured within the budget beside the teacher (`shipped`, its test metric and seed
  mean): the predicted-feasible best is what the search chose, the shipped one what a user gets.
- Seed means (`--test-seeds N`, 3 in seeds-long): each method's best is fine-tuned again with N more
  seeds (outside the cap) and its test metric averaged over the N + 1 draws, because the seed alone
  moves one draw by about 2.7 points (benchmarks/seed_spread.py), more than methods differ.
- Anytime hypervolume: the same front scored at 25%, 50%, 75% and 100% of the equal cap, and their
  mean (`hypervolume_auc`), so one cap that happens to cut a method just before (or after) a good
  trial does not decide the ranking alone.
- Validation: `speaker:NAME:2` (two held-out voices) so the metric the search maximises is an
  average over new voices; each run reports the Spearman correlation of its fine-tuned trials'
  validation and test metrics, so whether validation predicts test is measured, not assumed.
- Front members by origin (uniform warm start, allocation, sampler).
- Throughput with 1 and 2 Ray workers: fine-tuned trials per hour, idle worker share, driver
  seconds per candidate (ask, screen, tell, storage).
Teachers: the default AST trained per split under runs/bench-search/ (reused when present); the
device profile is runs/devices/local (calibrated if absent). JSON to --out; tables printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch
from _teachers import trained_teacher  # benchmarks/, run as scripts
from rich.console import Console
from rich.table import Table
from scipy.stats import spearmanr

from paretone._io import write_json
from paretone._version import __version__
from paretone.audio import audio_format, open_dataset
from paretone.audio._mix import MixSettings, mix_dataset
from paretone.compress import export_compressed, load_student
from paretone.errors import ConfigError
from paretone.evaluators import TrialEvaluator, load_context
from paretone.hw_models import DeviceProfile, LatencyModel, MemoryModel
from paretone.runtime import measure_latencies_isolated, run_logits
from paretone.search import (
    Budget,
    Candidate,
    Driver,
    Fidelity,
    SearchSettings,
    ensure_profile,
    feasible,
    fine_tune_seconds,
    full_fidelity,
    study_folder,
)
from paretone.search import hypervolume as front_hypervolume
from paretone.tasks import task_for
from paretone.training import score

BUDGET_FRACTION = 0.25
DEFAULT_BUDGET = Budget(latency_fraction=BUDGET_FRACTION)  # the issue's; --budget-fraction changes it
PICK_ATTEMPTS = 3  # `pick`'s default --attempts
MIXTURES = "mixtures"  # a split: the multi-label FSDD mixtures (`paretone data mix`), not a split of FSDD
ANYTIME = (0.25, 0.5, 0.75, 1.0)  # fractions of the equal cap at which every front is scored too
ROOT = Path("runs/bench-search")


@dataclass(frozen=True)
class Method:
    sampler: str
    warm_start: bool = True  # the uniform warm starts and their ladder first, as `paretone search` does
    allocate: bool = False
    uniform_rule: bool = False  # only the uniform rule's candidates, enqueued
    fidelity: Fidelity = dataclasses.field(default_factory=Fidelity)
    trials_factor: int = 1  # trials asked of it, times the scale's (the CPU-second cap evens them)


METHODS = {
    "uniform": Method("random", warm_start=False, uniform_rule=True),
    "random": Method("random", warm_start=False),
    "nsga2": Method("nsga2"),
    "nsga2-plain": Method("nsga2", warm_start=False),  # as Optuna ships it: screening, no warm starts
    "nsga2+alloc": Method("nsga2", allocate=True),
    "tpe": Method("tpe"),
    "tpe+alloc": Method("tpe", allocate=True),
    "gp": Method("gp"),
    "gp+alloc": Method("gp", allocate=True),
    "nsga2+fidelity": Method("nsga2", fidelity=Fidelity(screen_epochs=1), trials_factor=2),
}
SIMPLE = ("uniform", "nsga2-plain", "random")  # the rules the default must beat
QUICK_METHODS = ("uniform", "random", "nsga2-plain", "tpe", "tpe+alloc")  # simple rules, the default
LONG_METHODS = ("uniform", "random", "nsga2-plain", "nsga2", "tpe")
FULL_METHODS = tuple(name for name in METHODS if name != "nsga2+fidelity")  # screening needs > 1 epoch


@dataclass(frozen=True)
class Scale:
    splits: tuple[str, ...]
    seeds: tuple[int, ...]
    methods: tuple[str, ...]
    trials: int  # fine-tuned per run
    epochs: int  # per trial
    teacher_epochs: int
    throughput: bool = True  # also the 1- and 2-worker throughput runs
    test_seeds: int = 0  # more fine-tuning seeds for each method's best (outside the cap)


SCALES = {
    "quick": Scale(("speaker:nicolas:2",), (0,), QUICK_METHODS, 4, 1, 3),
    "medium": Scale(("speaker:nicolas:2",), (0,), FULL_METHODS, 8, 1, 15),
    "full": Scale(("speaker:nicolas:2", "speaker:theo:2"), (0, 1, 2), FULL_METHODS, 12, 2, 30),
    # the full run's splits and seeds at the medium run's trial count and length (about 70 minutes)
    "seeds": Scale(("speaker:nicolas:2", "speaker:theo:2"), (0, 1, 2), FULL_METHODS, 8, 1, 15, False),
    # the same at three times the trials, so the samplers get past their 8 startup trials (the
    # allocations, which lost at 8 trials in every run, and GP, whose driver took half a fine-tune
    # per candidate, left out)
    "seeds-long": Scale(
        ("speaker:nicolas:2", "speaker:theo:2"),
        (0, 1, 2),
        LONG_METHODS,
        24,
        1,
        15,
        throughput=False,
        test_seeds=3,
    ),
    # the same on the multi-label FSDD mixtures (mAP; a random fold split, so validation and test
    # come from one distribution), where compression costs show
    "mixtures": Scale((MIXTURES,), (0, 1, 2), LONG_METHODS, 24, 1, 15, throughput=False, test_seeds=3),
    "fidelity": Scale(("speaker:nicolas:2",), (0, 1, 2), ("nsga2", "nsga2+fidelity"), 8, 3, 15, False),
    "throughput": Scale(("speaker:nicolas:2",), (), (), 8, 1, 15),  # no method comparison
    # trials of about a minute, so Ray's and the workers' start-up is a small share of the run
    "throughput-long": Scale(("speaker:nicolas:2",), (), (), 6, 25, 15),
}


def default_method() -> str:
    """The method `paretone search` runs by default, read off SearchSettings."""
    d = SearchSettings(teacher=Path("."), study="x", storage="sqlite:///x.db")
    return next(
        name
        for name, m in METHODS.items()
        if (m.sampler, m.warm_start, m.allocate, m.uniform_rule, m.fidelity)
        == (d.sampler, d.warm_start, d.allocate, False, d.fidelity)
    )


def bench_teacher(catalog, split: str, epochs: int) -> Path:
    """The default AST trained ``epochs`` on ``split`` of FSDD (``catalog``) under ``ROOT``, or on
    the multi-label FSDD mixtures for ``MIXTURES`` (made once, seeded; their own default split,
    input format and task). seed_spread.py reuses it."""
    if split == MIXTURES:
        if not (ROOT / "mix" / "mix.json").is_file():
            mix_dataset(catalog, ROOT / "mix", MixSettings(long_minutes=0.0))  # no long recordings
        mixtures = open_dataset(ROOT / "mix" / "mixtures.csv")
        front_end = audio_format(mixtures.clips).front_end()
        out = ROOT / MIXTURES / f"teacher-{epochs}ep"
        task = task_for(mixtures)
        return trained_teacher(mixtures, "default", out, epochs, task=task, front_end=front_end)
    return trained_teacher(catalog, split, ROOT / split.replace(":", "-") / f"teacher-{epochs}ep", epochs)


def _run(
    settings: SearchSettings, method: Method, profile: DeviceProfile, console: Console
) -> dict[str, Any]:
    driver = Driver(settings, latency=LatencyModel(profile), memory=MemoryModel(profile), device="local")
    if method.uniform_rule:
        rule = driver.costs.uniform_rule(driver.space, driver.budget)[: settings.trials]
        for params in rule:
            driver.study.enqueue_trial(params)
        # no sampled trials after the rule's: fewer fine-tuned if it has fewer candidates
        driver.settings = dataclasses.replace(settings, trials=len(rule))
    started = time.perf_counter()
    gave_up = None
    try:
        summary = driver.run()
    except ConfigError as exc:  # the screening limit: no feasible candidate found in time
        gave_up, summary = str(exc), driver.summary(time.perf_counter() - started)
    wall = time.perf_counter() - started
    trials = driver.study.get_trials()
    done = sorted(
        (t for t in trials if t.user_attrs.get("fine_tuned") and t.datetime_complete),
        key=lambda t: t.datetime_complete,
    )
    tuned_seconds = sum(fine_tune_seconds(t) for t in done)
    told = len(trials)
    # the uniform rule's candidates are enqueued, not warm starts: the driver counts them as sampled
    origins = {"uniform rule": summary.front} if method.uniform_rule else summary.front_origins
    console.print(
        f"{settings.study}: {summary.fine_tuned} fine-tuned ({summary.partial_fidelity} screening only), "
        f"{summary.screened} screened, "
        f"front {summary.front} {origins}, best {summary.best_score}, {wall:.0f} s"
    )
    return {
        "study": settings.study,
        "storage": settings.storage,
        "gave_up": gave_up,
        "budget_ms": driver.budget.latency_ms,
        "epochs": settings.epochs,  # every trial's: the benchmark's space searches no epochs
        "_budget": driver.budget,
        "fine_tuned": summary.fine_tuned,
        "screening_only": summary.partial_fidelity,
        "screened": summary.screened,
        "failed": summary.failed,
        "front_origins": origins,
        "wall_seconds": wall,
        "fine_tune_seconds": tuned_seconds,
        "trials_per_hour": 3600 * summary.fine_tuned / wall,
        "steady_trials_per_hour": _steady_rate(done),
        "idle_worker_share": 1 - tuned_seconds / (wall * settings.workers),
        "sensitivity_seconds": summary.sensitivity_seconds,  # allocate's set-up, before any trial
        "allocation_seconds": summary.allocation_seconds,
        "driver_seconds_per_candidate": summary.driver_seconds / max(told, 1),
        "driver_share_of_mean_fine_tune": (summary.driver_seconds / max(told, 1))
        / (tuned_seconds / max(len(done), 1) or float("inf")),
        "_done": done,
        "_complete": summary.fine_tuned + summary.failed >= settings.trials,  # ran its full count
    }


def _drop_private(run: dict[str, Any]) -> None:
    """A run's working keys (``_done``, ``_complete``, ``_budget``) do not go into the JSON."""
    for key in [k for k in run if k.startswith("_")]:
        del run[key]


def _steady_rate(done: list[optuna.trial.FrozenTrial]) -> float | None:
    """Trials per hour from the first finished trial to the last: the rate once workers run, without
    Ray's and the workers' start-up (paid once per search, however long its trials)."""
    if len(done) < 2:
        return None
    span = (done[-1].datetime_complete - done[0].datetime_complete).total_seconds()
    return 3600 * (len(done) - 1) / span if span > 0 else None


def _within_cap(run: dict[str, Any], cap_s: float) -> list[optuna.trial.FrozenTrial]:
    """Fine-tuned trials in completion order while their summed fine-tuning time stays within cap."""
    kept, total = [], 0.0
    for t in run["_done"]:
        total += fine_tune_seconds(t)
        if total > cap_s * (1 + 1e-9):
            break
        kept.append(t)
    return kept


def _test_scores(run: dict[str, Any], context) -> dict[int, tuple[float, float]]:
    """By trial number, (validation, test) metric of every fine-tuned trial (the PyTorch student)."""
    pairs = {}
    for t in run["_done"]:
        loaded, _ = load_student(Candidate.from_trial(t, study_folder(run["storage"])).student)
        pairs[t.number] = (t.values[0], score(loaded.model, context.sets.test, context.task))
    return pairs


def _shipped(best: optuna.trial.FrozenTrial, run: dict[str, Any], context, tmp: Path) -> dict[str, Any]:
    """The best feasible trial exported with real kernels: test metric and measured latency."""
    loaded, recipe = load_student(Candidate.from_trial(best, study_folder(run["storage"])).student)
    path = tmp / f"{run['study']}-best.onnx"
    export_compressed(loaded.model, recipe, path, calibration=context.sets.train.waveforms[:64])
    test = context.sets.test
    logits = torch.from_numpy(run_logits(path, test.waveforms.numpy(), threads=1))
    return {"trial": best.number, "path": path, "onnx_test": context.task.score(logits, test.targets)}


def _seed_draws(
    best: optuna.trial.FrozenTrial,
    seed0_test: float,
    run: dict[str, Any],
    evaluator: TrialEvaluator,
    seeds: int,
    tmp: Path,
) -> list[float]:
    """The best trial's test metric (PyTorch student) with its own fine-tuning seed 0 (``seed0_test``,
    scored already) and again with seeds 1..``seeds``, as many epochs: one draw per seed, so methods
    can be compared on means rather than on single draws the seed alone moves by points."""
    candidate = Candidate.from_trial(best, study_folder(run["storage"]))
    test, task = evaluator.context.sets.test, evaluator.context.task
    draws = [seed0_test]
    for seed in range(1, seeds + 1):
        folder = tmp / f"{run['study']}-seed{seed}"
        evaluator.fine_tune(candidate.recipe, epochs=run["epochs"], out_dir=folder, seed=seed)
        draws.append(score(load_student(folder)[0].model, test, task))
    return draws


def _fit(kept: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """The trials a front is made of: feasible, at full fidelity."""
    return [t for t in kept if feasible(t) and full_fidelity(t)]


def _validation_front(pool: list[Candidate]) -> list[Candidate]:
    """Members of ``pool`` no other beats on validation metric and predicted latency (the two axes of
    the hypervolume)."""

    def beats(a: Candidate, b: Candidate) -> bool:
        return (
            a.score >= b.score
            and a.latency_ms <= b.latency_ms
            and (a.score, a.latency_ms) != (b.score, b.latency_ms)
        )

    return [c for c in pool if not any(beats(o, c) for o in pool)]


def _front_hypervolume(fit: list[optuna.trial.FrozenTrial], budget_ms: float) -> float:
    return front_hypervolume([Candidate.from_trial(t) for t in fit], budget_ms)


def _score_split(
    runs: dict[str, dict[str, Any]], context, tmp: Path, evaluator: TrialEvaluator | None, test_seeds: int
) -> None:
    """Equal CPU-seconds scoring of one (split, seed): every method on the same fine-tuning time;
    ``test_seeds`` more fine-tunings of each method's best (``evaluator``'s), outside the cap."""
    full = [r["fine_tune_seconds"] for r in runs.values() if r["_complete"]]  # not one that ran dry
    cap = min(full or [r["fine_tune_seconds"] for r in runs.values()])
    shipped = []
    for r in runs.values():
        kept = _within_cap(r, cap)
        r["cap_seconds"], r["trials_within_cap"] = cap, len(kept)
        fit = _fit(kept)
        r["hypervolume"] = _front_hypervolume(fit, r["budget_ms"])
        r["hypervolume_anytime"] = [
            _front_hypervolume(_fit(_within_cap(r, f * cap)), r["budget_ms"]) for f in ANYTIME
        ]
        r["hypervolume_auc"] = statistics.mean(r["hypervolume_anytime"])
        best = max(fit, key=lambda t: t.values[0], default=None)
        r["best_validation"] = best.values[0] if best else None
        pairs = r["_pairs"] = _test_scores(r, context)
        # the validation front (the models a user picks from) scored on the unseen voice: whether a
        # front that looks wide on validation (fast models keeping their score) still is there
        front = _validation_front([Candidate.from_trial(t) for t in fit])
        on_test = [dataclasses.replace(c, score=pairs[c.trial][1]) for c in front]
        r["test_hypervolume"] = front_hypervolume(on_test, r["budget_ms"])
        validation, test = [p[0] for p in pairs.values()], [p[1] for p in pairs.values()]
        r["validation_test_spearman"] = (
            float(spearmanr(validation, test).statistic) if len(pairs) >= 3 else None
        )
        r["best"] = _shipped(best, r, context, tmp) if best else None
        if best and test_seeds:
            r["best_test_seeds"] = _seed_draws(best, pairs[best.number][1], r, evaluator, test_seeds, tmp)
            r["best_test_seed_mean"] = statistics.mean(r["best_test_seeds"])
        if best:
            r["best"]["predicted_ms"] = best.values[1]
            shipped.append(r["best"])
        # what `pick` would ship: the validation front's members best first, up to its attempts,
        # the first measured within the budget beside the teacher (the best itself, measured above)
        by_number = {t.number: t for t in fit}
        ranked = sorted(front, key=lambda c: -c.score)[:PICK_ATTEMPTS]
        r["_attempts"] = [r["best"]] if best else []
        for c in ranked:
            if best is None or c.trial == best.number:
                continue
            attempt = _shipped(by_number[c.trial], r, context, tmp)
            attempt["predicted_ms"] = c.latency_ms
            r["_attempts"].append(attempt)
            shipped.append(attempt)
    # timed beside the teacher, as `pick` holds a budget (a slow phase of the machine moves both), and
    # in a fresh process, as `pick` times them: in this busy one a model once read 1.44x its prediction
    # that read 0.93x in each of 8 fresh processes
    paths = [s.pop("path") for s in shipped]
    teacher_onnx = context.teacher_path / "model.onnx"
    measured = measure_latencies_isolated([*paths, teacher_onnx], threads=1) if paths else []
    teacher_ms = measured[-1].latency_ms if measured else None
    for info, m in zip(shipped, measured[:-1], strict=True):
        info["measured_ms"] = m.latency_ms
        info["measured_vs_predicted"] = m.latency_ms / info["predicted_ms"]
        info["teacher_measured_ms"] = teacher_ms
        info["measured_vs_teacher"] = m.latency_ms / teacher_ms
    for r in runs.values():
        r["best_test"] = r["best"]["onnx_test"] if r["best"] else None
        limit_ms = r["_budget"].limit_beside(teacher_ms) if r["best"] else None
        r["within_budget"] = r["best"]["measured_ms"] <= limit_ms if r["best"] else None
        r["shipped"] = next((a for a in r["_attempts"] if a["measured_ms"] <= limit_ms), None)
        r["shipped_attempt"] = r["_attempts"].index(r["shipped"]) + 1 if r["shipped"] else None
        r["shipped_test_seed_mean"] = None
        if r["shipped"] and test_seeds:
            if r["shipped"] is r["best"]:
                r["shipped_test_seeds"] = r["best_test_seeds"]
            else:
                trial = next(t for t in r["_done"] if t.number == r["shipped"]["trial"])
                seed0 = r["_pairs"][trial.number][1]
                r["shipped_test_seeds"] = _seed_draws(trial, seed0, r, evaluator, test_seeds, tmp)
            r["shipped_test_seed_mean"] = statistics.mean(r["shipped_test_seeds"])
        r["shipped_test"] = r["shipped"]["onnx_test"] if r["shipped"] else None
        r["shipped"] = r["shipped"]["trial"] if r["shipped"] else None
        _drop_private(r)


def _settings(
    teacher: Path,
    tmp: Path,
    study: str,
    method: Method,
    seed: int,
    trials: int,
    epochs: int,
    workers: int,
    storage: str = "journal",
    budget: Budget = DEFAULT_BUDGET,
):
    return SearchSettings(
        teacher=teacher,
        study=study,
        storage=f"journal:{tmp / (study + '.log')}"
        if storage == "journal"
        else f"sqlite:///{tmp / (study + '.db')}",
        trials=trials * method.trials_factor,
        budget=budget,
        workers=workers,
        sampler=method.sampler,
        seed=seed,
        epochs=epochs,
        runs_dir=tmp / "runs",
        warm_start=method.warm_start,
        allocate=method.allocate,
        fidelity=method.fidelity,
        max_screened_per_trial=500 if method.warm_start or method.uniform_rule else 100,  # bound random
    )


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _gains(results: list[dict[str, Any]], name: str, key: str) -> list[float | None]:
    """Per (split, seed): method ``name``'s figure ``key`` minus the best simple rule's."""
    gains = []
    for res in results:
        known = [res["runs"][s].get(key) for s in SIMPLE if s in res["runs"]]
        known = [k for k in known if k is not None]
        mine = res["runs"][name].get(key)
        gains.append(mine - max(known) if known and mine is not None else None)
    return gains


def _ratios(results: list[dict[str, Any]], name: str, key: str) -> list[float | None]:
    """Per (split, seed): method ``name``'s figure ``key`` over the best simple rule's."""
    ratios = []
    for res in results:
        simple = max((res["runs"][s].get(key) or 0.0 for s in SIMPLE if s in res["runs"]), default=0.0)
        mine = res["runs"][name].get(key)
        ratios.append(mine / simple if simple > 0 and mine is not None else None)
    return ratios


def _summaries(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per method, medians over splits and seeds, and the hypervolume against the best simple rule."""
    out: dict[str, dict[str, Any]] = {}
    for name in results[0]["runs"]:
        runs = [res["runs"][name] for res in results]
        out[name] = {
            "hypervolume_median": _median([r["hypervolume"] for r in runs]),
            "hypervolume_vs_best_simple_median": _median(_ratios(results, name, "hypervolume")),
            "hypervolume_auc_median": _median([r["hypervolume_auc"] for r in runs]),
            "hypervolume_auc_vs_best_simple_median": _median(_ratios(results, name, "hypervolume_auc")),
            "test_hypervolume_median": _median([r.get("test_hypervolume") for r in runs]),
            "test_hypervolume_vs_best_simple_median": _median(_ratios(results, name, "test_hypervolume")),
            "best_validation_median": _median([r["best_validation"] for r in runs]),
            "best_test_median": _median([r["best_test"] for r in runs]),
            # the second goal: at least 0.01 (one point) over the best simple rule's test
            "best_test_gain_vs_best_simple_median": _median(_gains(results, name, "best_test")),
            # the same over fine-tuning seeds (--test-seeds): a gain the seed's noise cannot make
            "best_test_seed_mean_median": _median([r.get("best_test_seed_mean") for r in runs]),
            "best_test_seed_mean_gain_vs_best_simple_median": _median(
                _gains(results, name, "best_test_seed_mean")
            ),
            # what `pick` would ship (the first of its attempts measured within the budget)
            "shipped_test_seed_mean_median": _median([r.get("shipped_test_seed_mean") for r in runs]),
            "shipped_test_seed_mean_gain_vs_best_simple_median": _median(
                _gains(results, name, "shipped_test_seed_mean")
            ),
            "shipped_nothing": sum(1 for r in runs if r.get("shipped") is None),
            "validation_test_spearman_median": _median([r["validation_test_spearman"] for r in runs]),
            "front_origins": [r["front_origins"] for r in runs],
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="the same as --scale quick")
    parser.add_argument("--scale", choices=list(SCALES), default="full")
    parser.add_argument(
        "--storage",
        choices=("journal", "sqlite"),
        default="journal",
        help="every study's [journal, the default]",
    )
    parser.add_argument(
        "--test-seeds",
        type=int,
        default=None,
        help="fine-tune each method's best again with this many more seeds and compare test means "
        "[the scale's: 3 for seeds-long, else 0]",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help="run only these of the scale's seeds (e.g. --seeds 0) [all of the scale's]",
    )
    parser.add_argument(
        "--budget-fraction",
        type=float,
        default=BUDGET_FRACTION,
        help=f"the latency budget, a fraction of the teacher's [{BUDGET_FRACTION}, as the issue sets it]",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=list(METHODS),
        default=None,
        help="run only these methods [the scale's]",
    )
    args = parser.parse_args(argv)
    try:  # Budget's own checks, before any teacher is trained
        budget = Budget(latency_fraction=args.budget_fraction)
    except ConfigError as exc:
        parser.error(str(exc))
    scale_name = "quick" if args.quick else args.scale
    scale = SCALES[scale_name]
    out = args.out or Path(
        f"benchmarks/results/search{'' if scale_name == 'full' else '-' + scale_name}.json"
    )
    console = Console(width=160)
    splits, seeds, methods, trials, epochs = (
        scale.splits,
        scale.seeds,
        scale.methods,
        scale.trials,
        scale.epochs,
    )
    test_seeds = scale.test_seeds if args.test_seeds is None else args.test_seeds
    if args.seeds is not None:
        if not set(args.seeds) <= set(seeds):
            parser.error(f"--seeds must be among the {scale_name} scale's seeds {seeds}")
        seeds = tuple(args.seeds)
    if args.methods is not None:
        methods = tuple(args.methods)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    catalog = open_dataset(args.data, "fsdd")
    started = time.perf_counter()
    results, throughput = [], []
    with tempfile.TemporaryDirectory() as work:
        tmp = Path(work)
        for split in splits:
            teacher = bench_teacher(catalog, split, scale.teacher_epochs)
            probe = _settings(teacher, tmp, "probe", METHODS["random"], 0, 1, 1, 1)
            profile = ensure_profile(probe, device="local", profile_dir="runs/devices")
            context = load_context(teacher)
            # the same decoded audio as ``context``, not decoded again
            evaluator = TrialEvaluator(teacher, decoded=context.decoded()) if test_seeds else None
            for seed in seeds:
                tag = f"{split.replace(':', '-')}-{seed}"
                runs = {
                    name: _run(
                        _settings(
                            teacher,
                            tmp,
                            f"{name.replace('+', '-')}-{tag}",
                            METHODS[name],
                            seed,
                            trials,
                            epochs,
                            2,
                            args.storage,
                            budget,
                        ),
                        METHODS[name],
                        profile,
                        console,
                    )
                    for name in methods
                }
                _score_split(runs, context, tmp, evaluator, test_seeds)
                results.append({"split": split, "seed": seed, "runs": runs})
                # a long run's finished (split, seed) pairs survive a crash or an interruption
                write_json(out.with_suffix(".partial.json"), {"scale": scale_name, "results": results})
        teacher = bench_teacher(catalog, splits[0], scale.teacher_epochs)
        throughput_trials = trials if scale_name == "quick" else 2 * trials
        for workers in (1, 2) if scale.throughput else ():
            settings = _settings(
                teacher,
                tmp,
                f"throughput-{workers}",
                METHODS["nsga2"],
                100,
                throughput_trials,
                epochs,
                workers,
                args.storage,
                budget,
            )
            run = _run(settings, METHODS["nsga2"], profile, console)
            _drop_private(run)
            throughput.append({"workers": workers, **run})
    summary = _summaries(results) if results else {}
    default = default_method()
    scaling = throughput[1]["trials_per_hour"] / throughput[0]["trials_per_hour"] if throughput else None
    steady = [t["steady_trials_per_hour"] for t in throughput]
    steady_scaling = steady[1] / steady[0] if len(steady) == 2 and None not in steady else None
    payload = {
        "benchmark": "search",
        "paretone_version": __version__,
        "scale": scale_name,
        "default_method": default,
        "hypervolume_ratio": summary[default]["hypervolume_vs_best_simple_median"]
        if default in summary
        else None,
        "hypervolume_auc_ratio": summary[default]["hypervolume_auc_vs_best_simple_median"]
        if default in summary
        else None,
        "test_hypervolume_ratio": summary[default]["test_hypervolume_vs_best_simple_median"]
        if default in summary
        else None,
        "worker_scaling": scaling,
        "steady_worker_scaling": steady_scaling,  # after start-up: first finished trial to last
        "budget_fraction": args.budget_fraction,
        "storage": args.storage,
        "splits": splits,
        "seeds": seeds,
        "trials_per_run": trials,
        "epochs_per_trial": epochs,
        "test_seeds": test_seeds,
        "summary": summary,
        "results": results,
        "throughput": throughput,
        "device": profile.fingerprint,
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_json(out, payload)
    out.with_suffix(".partial.json").unlink(missing_ok=True)
    title = f"search at {args.budget_fraction:.0%} of the teacher, {trials} trials, equal CPU-seconds"
    table = Table(title=title)
    columns = ["method", "hypervolume", "vs best simple", "anytime vs best simple", "best validation"]
    columns += ["test-voice hv vs best simple", "best test", "test gain", "seed-mean gain"]
    columns.append("val~test rho")
    for column in columns:
        table.add_column(column, justify="right")
    for name, s in summary.items():
        cells = [s["hypervolume_median"], s["hypervolume_vs_best_simple_median"]]
        cells += [s["hypervolume_auc_vs_best_simple_median"], s["best_validation_median"]]
        cells += [s["test_hypervolume_vs_best_simple_median"], s["best_test_median"]]
        cells += [s["best_test_gain_vs_best_simple_median"]]
        cells += [s["best_test_seed_mean_gain_vs_best_simple_median"]]
        cells += [s["validation_test_spearman_median"]]
        table.add_row(
            name + (" (default)" if name == default else ""),
            *("-" if c is None else f"{c:.3f}" for c in cells),
        )
    console.print(table)
    for t in throughput:
        console.print(
            f"{t['workers']} worker(s): {t['trials_per_hour']:.1f} trials/h "
            f"({t['steady_trials_per_hour'] or float('nan'):.1f} after start-up), "
            f"idle {t['idle_worker_share']:.0%}, "
            f"driver {t['driver_seconds_per_candidate']:.3f} s per candidate"
        )
    if scaling is not None:
        console.print(
            f"worker scaling {scaling:.2f}x (after start-up: {steady_scaling or float('nan'):.2f}x)"
        )
    console.print(f"wrote {out} in {payload['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
