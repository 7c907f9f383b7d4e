"""Low-rank factorisation against channel pruning on the default AST, and where the latency model puts it.

    python benchmarks/lowrank.py            # official and speaker:nicolas splits (about 35 minutes)
    python benchmarks/lowrank.py --quick    # official split, short fine-tuning, a tiny search (< 10 minutes)

1. At 50% of the linear layers' parameters removed, each distil-fine-tuned from the same teacher:
   low-rank factorisation of every linear layer (SVD init, and activation-weighted SVD), channel
   pruning of every attention and feed-forward unit, and both (pruned to 3/4, then factorised);
   accuracy right after compression and after fine-tuning, measured latency (ONNX Runtime, 1
   thread, interleaved passes beside the fp32 teacher), file bytes.
2. The rank staircase: one factorised feed-forward layer (192 -> r -> 384) timed at every rank
   that is a multiple of 8, beside the device profile's prediction and the unfactorised layer.
3. A search at 50% of the teacher's latency with factorisation in the space: how many front
   members use it, and at which latencies.
The teachers come from benchmarks/teacher.py's runs (runs/bench-teacher; trained if absent). Writes
JSON to --out (default benchmarks/results/lowrank.json) and prints tables.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import onnx
import torch
from _teachers import trained_teacher  # benchmarks/, run as scripts
from rich.console import Console
from rich.table import Table

from paretone._io import write_json
from paretone._version import __version__
from paretone.audio import FrontEndConfig, SplitSets, load_splits, make_splits, open_dataset
from paretone.compress import (
    Distill,
    Factorize,
    Prune,
    Recipe,
    apply,
    export_compressed,
    resolve_rank,
    teacher_logits,
)
from paretone.hw_models import DeviceProfile, LatencyModel, calibrate, micro_model
from paretone.models import AudioModel, Kernel, count_complexity, export_onnx, load_model
from paretone.runtime import measure_latencies, run_logits
from paretone.search import (
    Budget,
    SearchSettings,
    candidates,
    ensure_profile,
    load_study,
    pareto_candidates,
    run_search,
    study_folder,
)
from paretone.spaces import SearchSpace, SpaceConfig
from paretone.tasks import CLASSIFICATION
from paretone.training import TrainConfig, distil, score

DISTILL = Distill(temperature=4.0, alpha=0.7)
SPLITS = {"official": "official", "speaker:nicolas": "loso-nicolas"}
LOWRANK_SPACE = {"ranks": [0.125, 0.5]}  # the [space] setting that puts factorisation in the search


def _teacher(catalog, split: str, directory: Path, epochs: int) -> AudioModel:
    trained_teacher(catalog, split, directory, epochs)  # the default AST (ASTConfig.uniform)
    return load_model(directory).model


def _linear_params(model: AudioModel) -> int:
    return sum(
        p.numel()
        for name, p in model.named_parameters()
        if (".attn." in name or ".ffn." in name) and name.endswith("weight")
    )


def _cases(teacher: AudioModel) -> dict[str, Recipe]:
    structure = teacher.structure()
    units = [u.name for u in structure.prunable if u.kind != "attention_heads"]
    ranks = {}
    for layer in structure.quantizable:  # rank r keeps r (in + out) of in x out weights: half of them
        if layer.kind == "linear":
            ranks[layer.name] = 8 * round(
                0.5 * layer.in_features * layer.out_features / (layer.in_features + layer.out_features) / 8
            )
    both = {}
    for layer in structure.quantizable:  # pruned to 3/4 of every unit, factorised to keep 2/3 of that
        if layer.kind == "linear":
            n_in, n_out = layer.in_features, layer.out_features
            n_in = n_in if layer.name.endswith((".q", ".k", ".v", ".fc1")) else round(0.75 * n_in)
            n_out = n_out if layer.name.endswith((".o", ".fc2")) else round(0.75 * n_out)
            both[layer.name] = 8 * round((2 / 3) * n_in * n_out / (n_in + n_out) / 8)
    return {
        "low-rank (svd)": Recipe.of(Factorize(ranks), DISTILL),
        "low-rank (activation svd)": Recipe.of(Factorize(ranks, init="activation_svd"), DISTILL),
        "channel pruning": Recipe.of(Prune(channels=dict.fromkeys(units, 0.5), importance="taylor"), DISTILL),
        "both": Recipe.of(
            Prune(channels=dict.fromkeys(units, 0.75), importance="taylor"), Factorize(both), DISTILL
        ),
    }


def _split(catalog, split: str, folder: str, work: Path, quick: bool, console: Console) -> dict[str, Any]:
    epochs = 2 if quick else 8
    sets: SplitSets = load_splits(make_splits(catalog, split), catalog.labels, FrontEndConfig())
    teacher = _teacher(catalog, split, Path("runs/bench-teacher") / folder, 8 if quick else 30)
    cached = teacher_logits(teacher, sets.train, cache_dir=work / "cache")
    teacher_onnx = export_onnx(teacher, work / f"{folder}-teacher.onnx")
    base = _linear_params(teacher)
    rows = [
        {
            "case": "fp32 teacher",
            "test_accuracy": score(teacher, sets.test),
            "test_accuracy_before_finetuning": score(teacher, sets.test),
            "linear_params_removed": 0.0,
            "params": count_complexity(teacher).params,
            "macs": count_complexity(teacher).macs,
            "onnx": str(teacher_onnx),
        }
    ]
    for name, recipe in _cases(teacher).items():
        started = time.perf_counter()
        student = apply(recipe, teacher, data=sets.train)
        before = score(student, sets.test)
        distil(
            student,
            sets.train,
            sets.validation,
            cached,
            recipe.distillation,
            TrainConfig.for_finetuning(epochs),
        )
        path = work / f"{folder}-{name.replace(' ', '_')}.onnx"
        export_compressed(student, recipe, path, calibration=sets.train.waveforms[:64])
        logits = torch.from_numpy(run_logits(path, sets.test.waveforms.numpy()))
        complexity = count_complexity(student)
        rows.append(
            {
                "case": name,
                "recipe": recipe.to_dict(),
                "test_accuracy_before_finetuning": before,
                "test_accuracy": score(student, sets.test),
                "onnx_test_accuracy": CLASSIFICATION.score(logits, sets.test.targets),
                "linear_params_removed": 1 - _linear_params(student) / base,
                "params": complexity.params,
                "macs": complexity.macs,
                "onnx": str(path),
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
        console.print(
            f"{split}: {name}: {rows[-1]['test_accuracy']:.2%} "
            f"({rows[-1]['linear_params_removed']:.0%} of the linear weights removed)"
        )
    measured = measure_latencies([r["onnx"] for r in rows], threads=1, passes=3 if quick else 5, runs=40)
    for row, latency in zip(rows, measured, strict=True):
        row["latency_ms"] = latency.latency_ms
        row["latency_vs_teacher"] = latency.latency_ms / measured[0].latency_ms
        row["file_bytes"] = Path(row.pop("onnx")).stat().st_size
    return {"split": split, "rows": rows}


def _staircase(profile: DeviceProfile, work: Path, quick: bool) -> list[dict[str, Any]]:
    """fc1 of the default AST (192 -> 384, GELU, 50 tokens) factorised at every multiple of 8."""
    latency = LatencyModel(profile)
    ranks = list(range(8, 128, 8 if not quick else 24))  # rank 128 would keep all 384 x 192 weights
    kernels = [Kernel.of("linear_gelu", tokens=50, **{"in": 192, "out": 384})]
    for r in ranks:
        resolve_rank(r, 384, 192, "fc1")
        kernels += [
            Kernel.of("matmul", tokens=50, **{"in": 192, "out": r}),
            Kernel.of("linear_gelu", tokens=50, **{"in": r, "out": 384}),
        ]
    paths = []
    for i, kernel in enumerate(kernels):
        path = work / f"stair-{i}.onnx"
        onnx.save(micro_model(kernel), str(path))
        paths.append(path)
    measured = measure_latencies(paths, threads=1, passes=3 if quick else 5, runs=40)
    baseline = float(profile.baseline.get("latency_ms", 0.0))
    rows = [
        {
            "rank": 192,
            "measured_ms": measured[0].latency_ms - baseline,
            "predicted_ms": latency.kernel_ms(kernels[0]),
            "layer": "unfactorised",
        }
    ]
    for i, r in enumerate(ranks):
        first, second = kernels[1 + 2 * i], kernels[2 + 2 * i]
        predicted = [latency.kernel_ms(first), latency.kernel_ms(second)]
        rows.append(
            {
                "rank": r,
                "measured_ms": measured[1 + 2 * i].latency_ms + measured[2 + 2 * i].latency_ms - 2 * baseline,
                "predicted_ms": None if None in predicted else sum(predicted),
                "layer": "factor pair",
            }
        )
    return rows


def _search(teacher_dir: Path, profile_dir: Path, work: Path, quick: bool) -> dict[str, Any]:
    settings = SearchSettings(
        teacher=teacher_dir,
        study="bench-lowrank",
        storage=f"sqlite:///{work / 'lowrank.db'}",
        trials=4 if quick else 16,
        budget=Budget(latency_fraction=0.5),
        workers=2,
        epochs=1 if quick else 2,
        space=SpaceConfig.from_dict(LOWRANK_SPACE),
        runs_dir=work / "runs",
    )
    summary = run_search(settings, device="local", profile_dir=profile_dir)
    study = load_study(settings.study, settings.storage)
    front = pareto_candidates([c for c in candidates(study, study_folder(settings.storage)) if c.feasible])
    teacher_ms = summary.budget.teacher_latency_ms
    members = [
        {
            "trial": c.trial,
            "validation_accuracy": c.score,
            "latency_fraction_of_teacher": c.latency_ms / teacher_ms,
            "factorised_layers": len(c.recipe.get("operators", {}).get("factorize", {}).get("ranks", {})),
        }
        for c in front
    ]
    return {
        "fine_tuned": summary.fine_tuned,
        "screened": summary.screened,
        "front": members,
        "front_members_using_lowrank": sum(m["factorised_layers"] > 0 for m in members),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/lowrank.json"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    console = Console(width=160)
    catalog = open_dataset(args.data, "fsdd")
    started = time.perf_counter()
    splits = ["official"] if args.quick else list(SPLITS)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results = [_split(catalog, s, SPLITS[s], work, args.quick, console) for s in splits]
        teacher_dir = Path("runs/bench-teacher/official")
        profile_dir = work / "devices" if args.quick else Path("runs/devices")
        space = SpaceConfig.from_dict(LOWRANK_SPACE)
        if args.quick:  # a coarse profile of its own, so the quick run stays quick
            teacher = load_model(teacher_dir).model
            operators = dict(SearchSpace.build(teacher.structure(), space).params)
            calibrate(
                device="local",
                profile_dir=profile_dir,
                teacher=teacher,
                models=6,
                passes=2,
                operators=operators,
            )
        probe = SearchSettings(
            teacher=teacher_dir, study="probe", storage=f"sqlite:///{work / 'probe.db'}", space=space
        )
        profile = ensure_profile(probe, device="local", profile_dir=profile_dir)
        stairs = _staircase(profile, work, args.quick)
        search = _search(teacher_dir, profile_dir, work, args.quick)
    first = {r["case"]: r for r in results[0]["rows"]}
    payload = {
        "benchmark": "lowrank",
        "paretone_version": __version__,
        "quick": args.quick,
        "lowrank_latency_ratio": first["low-rank (svd)"]["latency_vs_teacher"],
        "pruning_latency_ratio": first["channel pruning"]["latency_vs_teacher"],
        "both_latency_ratio": first["both"]["latency_vs_teacher"],
        "lowrank_test_accuracy": first["low-rank (svd)"]["test_accuracy"],
        "pruning_test_accuracy": first["channel pruning"]["test_accuracy"],
        "both_test_accuracy": first["both"]["test_accuracy"],
        "teacher_test_accuracy": first["fp32 teacher"]["test_accuracy"],
        "splits": results,
        "staircase": stairs,
        "staircase_prediction_error_pct": statistics.median(
            abs(r["predicted_ms"] / r["measured_ms"] - 1) * 100 for r in stairs if r["predicted_ms"]
        ),
        "search": search,
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_json(args.out, payload)
    for result in results:
        table = Table(title=f"50% of the linear layers' parameters removed, {result['split']}")
        for column in ("case", "removed", "acc before FT", "test acc", "MACs", "file KB", "latency vs fp32"):
            table.add_column(column)
        for r in result["rows"]:
            table.add_row(
                r["case"], f"{r['linear_params_removed']:.0%}", f"{r['test_accuracy_before_finetuning']:.2%}",
                f"{r['test_accuracy']:.2%}", f"{r['macs'] / 1e6:.1f}M", f"{r['file_bytes'] / 1e3:.0f}",
                f"{r['latency_vs_teacher']:.2f}x",
            )  # fmt: skip
        console.print(table)
    stair = Table(title="rank staircase: fc1 (192 -> r -> 384, 50 tokens)")
    for column in ("rank", "measured ms", "predicted ms"):
        stair.add_column(column)
    for r in stairs:
        stair.add_row(
            str(r["rank"]),
            f"{r['measured_ms']:.4f}",
            "-" if r["predicted_ms"] is None else f"{r['predicted_ms']:.4f}",
        )
    console.print(stair)
    console.print(f"search with low-rank in the space: {search}")
    console.print(f"wrote {args.out} in {payload['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
