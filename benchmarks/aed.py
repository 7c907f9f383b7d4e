"""Sound-event detection on FSDD mixtures: the quantized-distillation claim, recurrent formats, a search.

    python benchmarks/aed.py                  # 3,000 mixtures, AST and CNN teachers, 2 seeds (3+ hours)
    python benchmarks/aed.py --scale medium   # 3,000 mixtures, fewer epochs, 1 seed (about 75 minutes)
    python benchmarks/aed.py --quick          # 600 mixtures, a few epochs, a tiny search (< 10 minutes)

1. `paretone data mix` (seeded): 1-3 digits per 2-s clip over pink noise, strong labels.
2. Teachers on the mixtures (AST and CNN, the data's own 8 kHz / 2 s input): test mAP, F1.
3. The published claim (Shi et al., Interspeech 2019): an LSTM student distilled from the teacher
   against the same student trained alone (same epochs, same settings, the loss the only
   difference): relative reduction of 1 - mAP and of 1 - F1 (published: 15%). Then the distilled
   student quantized (LSTM layers as ONNX Runtime's DynamicQuantizeLSTM, the head w8a8) and
   distil-fine-tuned: its file as a share of the teacher's and of the float student's (published
   2% and 12%) and what quantization cost in mAP.
4. The same distillation figures on FSDD single-label (official and speaker:nicolas).
5. Latency of each recurrent format against float, side by side (interleaved passes, 1 thread).
6. A search on the mixtures at 10% of the teacher's measured latency, offering recurrent students
   beside the pruned teacher, and its pick measured beside the teacher.
Writes JSON to --out (default benchmarks/results/aed.json) and prints tables.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from _teachers import trained_teacher  # benchmarks/, run as scripts
from rich.console import Console
from rich.table import Table

from paretone._io import write_json
from paretone._version import __version__
from paretone.audio import SplitSets, audio_format, load_splits, make_splits, open_dataset
from paretone.audio._mix import MixSettings, mix_dataset
from paretone.compress import Distill, Quantize, Recipe, apply, export_compressed, teacher_logits
from paretone.hw_models import calibrate
from paretone.models import AudioModel, build_model, export_onnx, family_named, load_model
from paretone.runtime import measure_latencies, run_logits
from paretone.search import Budget, SearchSettings, run_search
from paretone.ship import PICKED, TEACHER_FP32, PickSettings, pick
from paretone.spaces import SearchSpace, SpaceConfig
from paretone.tasks import CLASSIFICATION, MULTILABEL, Task, task_for
from paretone.training import TrainConfig, distil, fit, predict_logits

DISTILL = Distill(temperature=2.0, alpha=0.7)


@dataclass(frozen=True)
class Scale:
    """How long each part trains; every field is written into the JSON."""

    name: str
    clips: int
    long_minutes: float
    teacher_epochs: int
    student_epochs: int
    seeds: tuple[int, ...]
    hidden: tuple[int, ...]
    quantized_epochs: int
    fsdd_splits: tuple[str, ...]
    fsdd_teacher_epochs: int
    search_students: tuple[str, ...]
    search_student_epochs: int
    search_trials: int
    search_epochs: int
    final_epochs: int
    calibration_models: int
    passes: int
    small_fsdd_teacher: bool


SCALES = {
    "quick": Scale(
        name="quick", clips=600, long_minutes=0.5, teacher_epochs=3, student_epochs=4, seeds=(0,),
        hidden=(32,), quantized_epochs=1, fsdd_splits=("official",), fsdd_teacher_epochs=3,
        search_students=("lstm:hidden=32",), search_student_epochs=3, search_trials=4, search_epochs=1,
        final_epochs=1, calibration_models=6, passes=3, small_fsdd_teacher=True,
    ),
    "medium": Scale(
        name="medium", clips=3000, long_minutes=2.0, teacher_epochs=12, student_epochs=15, seeds=(0,),
        hidden=(96,), quantized_epochs=3, fsdd_splits=("official", "speaker:nicolas"), fsdd_teacher_epochs=10,
        search_students=("lstm:hidden=32", "lstm:hidden=64", "lstm:hidden=128"), search_student_epochs=10,
        search_trials=8, search_epochs=1, final_epochs=3, calibration_models=8, passes=5,
        small_fsdd_teacher=False,
    ),
    "full": Scale(
        name="full", clips=3000, long_minutes=2.0, teacher_epochs=25, student_epochs=30, seeds=(0, 1),
        hidden=(96,), quantized_epochs=5, fsdd_splits=("official", "speaker:nicolas"), fsdd_teacher_epochs=20,
        search_students=("lstm:hidden=32", "lstm:hidden=64", "lstm:hidden=128", "gru:hidden=64"),
        search_student_epochs=25, search_trials=20, search_epochs=2, final_epochs=6, calibration_models=12,
        passes=9, small_fsdd_teacher=False,
    ),
}  # fmt: skip


def _mixtures(fsdd, work: Path, scale: Scale) -> Path:
    root = work / "mix"
    settings = MixSettings(clips=scale.clips, long_minutes=scale.long_minutes)
    if not (root / "mix.json").is_file():
        mix_dataset(fsdd, root, settings)
    return root / "mixtures.csv"


def _teacher(catalog, family: str, split: str, out: Path, epochs: int, **sizes: Any) -> dict[str, Any]:
    """Train (or reuse) a teacher on the data's own input format; its metrics."""
    task, fe = task_for(catalog), audio_format(catalog.clips).front_end()
    trained_teacher(catalog, split, out, epochs, family=family, task=task, front_end=fe, **sizes)
    metrics = json.loads((out / "metrics.json").read_text())
    row = {
        "family": family,
        "split": split,
        "folder": str(out),
        f"test_{task.metric}": metrics[task.metric]["test"],
        "params": metrics["model"]["params"],
        "train_seconds": metrics["training"]["seconds"],
        "file_bytes": (out / "model.onnx").stat().st_size,
    }
    for key in ("test_f1_micro", "test_f1_macro"):
        if key in metrics:
            row[key] = metrics[key]
    return row


def _evaluate(model: AudioModel, sets: SplitSets, task: Task) -> dict[str, float]:
    """The task's metric and report on test, at a decision rule fitted on validation."""
    decision = task.calibrate_decision(predict_logits(model, sets.validation), sets.validation.targets)
    report = task.report(predict_logits(model, sets.test), sets.test.targets, decision)
    return {k: v for k, v in report.items() if isinstance(v, float)}


def _onnx_evaluate(path: Path, sets: SplitSets, task: Task) -> dict[str, float]:
    val = torch.from_numpy(run_logits(path, sets.validation.waveforms.numpy()))
    test = torch.from_numpy(run_logits(path, sets.test.waveforms.numpy()))
    decision = task.calibrate_decision(val, sets.validation.targets)
    return {k: v for k, v in task.report(test, sets.test.targets, decision).items() if isinstance(v, float)}


def _student(teacher: AudioModel, hidden: tuple[int, ...], seed: int) -> AudioModel:
    torch.manual_seed(seed)
    lstm = family_named("lstm")
    config = lstm.teacher_config(
        num_classes=teacher.config.num_classes, front_end=teacher.config.front_end, hidden=hidden
    )
    return build_model(config)


def _distillation(
    teacher: AudioModel, sets: SplitSets, task: Task, cached: torch.Tensor, hidden: tuple[int, ...],
    epochs: int, seeds: tuple[int, ...],
) -> tuple[dict[str, Any], AudioModel]:  # fmt: skip
    """The same LSTM student trained alone and distilled, per seed; the first distilled student."""
    config = TrainConfig(epochs=epochs, patience_epochs=epochs).without_augmentation()  # same for both
    runs, first = [], None
    for seed in seeds:
        for mode in ("alone", "distilled"):
            student = _student(teacher, hidden, seed)
            cpu = time.process_time()
            if mode == "alone":
                fit(student, sets.train, sets.validation, config, task=task)
            else:
                distil(student, sets.train, sets.validation, cached, DISTILL, config, task=task)
                first = student if first is None else first
            runs.append({"seed": seed, "mode": mode, **_evaluate(student, sets, task),
                         "cpu_seconds": round(time.process_time() - cpu, 1)})  # fmt: skip
    metric = task.metric
    figures: dict[str, Any] = {"hidden": list(hidden), "epochs": epochs, "seeds": list(seeds), "runs": runs}
    for key in (metric, "f1_micro", "f1_macro"):
        alone = [r[key] for r in runs if r["mode"] == "alone" and key in r]
        distilled = [r[key] for r in runs if r["mode"] == "distilled" and key in r]
        if not alone:
            continue
        error_alone, error_distilled = 1 - sum(alone) / len(alone), 1 - sum(distilled) / len(distilled)
        figures[key] = {
            "alone": sum(alone) / len(alone),
            "distilled": sum(distilled) / len(distilled),
            "error_reduction": (error_alone - error_distilled) / error_alone if error_alone > 0 else 0.0,
        }
    assert first is not None
    return figures, first


def _quantized(
    student: AudioModel, teacher_dir: Path, sets: SplitSets, task: Task, cached: torch.Tensor, epochs: int,
    work: Path,
) -> dict[str, Any]:  # fmt: skip
    """The distilled student quantized (LSTM layers dynamic int8, head w8a8), distil-fine-tuned."""
    layers = {
        q.name: ("w8a8" if q.kind == "linear" else "w8a8-dynamic") for q in student.structure().quantizable
    }
    recipe = Recipe.of(Quantize(layers), DISTILL)
    quantized = apply(recipe, student, data=sets.train, task=task)
    distil(
        quantized, sets.train, sets.validation, cached, DISTILL, TrainConfig.for_finetuning(epochs), task=task
    )
    float_path = export_onnx(student, work / "student-float.onnx")
    int8_path = work / "student-int8.onnx"
    export_compressed(quantized, recipe, int8_path, calibration=sets.train.waveforms[:64])
    teacher_bytes = (teacher_dir / "model.onnx").stat().st_size
    float_bytes, int8_bytes = float_path.stat().st_size, int8_path.stat().st_size
    fp, q = _onnx_evaluate(float_path, sets, task), _onnx_evaluate(int8_path, sets, task)
    return {
        "formats": layers,
        "finetune_epochs": epochs,
        "teacher_file_bytes": teacher_bytes,
        "float_student_file_bytes": float_bytes,
        "quantized_student_file_bytes": int8_bytes,
        "share_of_teacher_file": int8_bytes / teacher_bytes,
        "share_of_float_student_file": int8_bytes / float_bytes,
        "float_student_onnx": fp,
        "quantized_student_onnx": q,
        f"{task.metric}_cost_points": 100 * (fp[task.metric] - q[task.metric]),
        "paths": {"float": str(float_path), "int8": str(int8_path)},
    }


def _format_latencies(teacher_dir: Path, student: AudioModel, work: Path, scale: Scale) -> dict[str, Any]:
    """Teacher, LSTM float, LSTM dynamic int8 (recurrent layers only) and GRU float, interleaved."""
    lstm_int8 = work / "lstm-int8-rnn-only.onnx"
    rnn_only = Recipe.of(Quantize({f"rnn.{i}": "w8a8-dynamic" for i in range(len(student.config.hidden))}))
    export_compressed(apply(rnn_only, student), rnn_only, lstm_int8, calibration=torch.zeros(4, 16000))
    gru = family_named("gru").teacher_config(
        num_classes=student.config.num_classes,
        front_end=student.config.front_end,
        hidden=student.config.hidden,
    )
    gru_path = export_onnx(build_model(gru).eval(), work / "gru-float.onnx")
    paths = {
        "teacher": teacher_dir / "model.onnx",
        "lstm_float": work / "student-float.onnx",
        "lstm_w8a8_dynamic": lstm_int8,
        "gru_float": gru_path,
    }
    measured = measure_latencies(list(paths.values()), threads=1, passes=scale.passes, runs=40)
    by_name = dict(zip(paths, measured, strict=True))
    base = by_name["lstm_float"].latency_ms
    return {
        name: {
            "latency_ms": m.latency_ms,
            "vs_lstm_float": m.latency_ms / base,
            "file_bytes": paths[name].stat().st_size,
        }
        for name, m in by_name.items()
    }


def _search_and_pick(teacher_dir: Path, work: Path, scale: Scale, console: Console) -> dict[str, Any]:
    epochs = scale.search_student_epochs
    space = SpaceConfig.from_dict({"students": [f"{s};epochs={epochs}" for s in scale.search_students]})
    teacher = load_model(teacher_dir).model
    devices = work / "devices"
    operators = dict(SearchSpace.build(teacher.structure(), space, teacher=teacher.config).params)
    calibrate(device="local", profile_dir=devices, teacher=teacher, operators=operators,
              models=scale.calibration_models, passes=max(2, scale.passes // 2))  # fmt: skip
    settings = SearchSettings(
        teacher=teacher_dir,
        study="bench-aed",
        storage=f"sqlite:///{work / 'aed-study.db'}",
        trials=scale.search_trials,
        budget=Budget(latency_fraction=0.10),
        workers=2,
        epochs=scale.search_epochs,
        runs_dir=work / "runs",
        space=space,
        resume=(work / "aed-study.db").is_file(),
    )
    summary = run_search(settings, device="local", profile_dir=devices)
    console.print(
        f"search: {summary.fine_tuned} fine-tuned, {summary.screened} screened, front {summary.front}"
    )
    report = pick(
        PickSettings(
            study=settings.study,
            storage=settings.storage,
            out=work / "pick",
            latency_limit_fraction=0.10,
            final_epochs=scale.final_epochs,
            overwrite=True,
        ),
        progress=console.print,
    )
    picked, fp32 = report.model(PICKED), report.model(TEACHER_FP32)
    return {
        "students_offered": list(space.settings["students"]),
        "fine_tuned": summary.fine_tuned,
        "screened": summary.screened,
        "front": summary.front,
        "picked_trial": report.trial,
        "picked_student": report.recipe.get("operators", {})
        .get("student", {})
        .get("family", "pruned teacher"),
        "recipe_in_words": list(report.recipe_in_words),
        "picked_test_map": picked.test_score,
        "teacher_test_map": fp32.test_score,
        "picked_test_f1_micro": picked.test_report.get("f1_micro"),
        "teacher_test_f1_micro": fp32.test_report.get("f1_micro"),
        "picked_latency_ms": picked.measured_latency_ms,
        "teacher_latency_ms": fp32.measured_latency_ms,
        "latency_ratio": picked.measured_latency_ms / fp32.measured_latency_ms,
        "limit_ms": report.limit_ms,
        "within_limit": picked.measured_latency_ms <= report.limit_ms,
        "file_ratio": picked.file_bytes / fp32.file_bytes,
    }


def _table(title: str, rows: list[tuple[str, ...]], header: tuple[str, ...], console: Console) -> None:
    table = Table(title=title)
    for h in header:
        table.add_column(h)
    for r in rows:
        table.add_row(*r)
    console.print(table)


def parse_scaled(
    argv: list[str] | None, doc: str, benchmark: str
) -> tuple[argparse.Namespace, Scale, Path, Path]:
    """The arguments of a benchmark on the mixtures: (args, scale, work folder, JSON path). The work
    folder (mixtures, teachers) is aed.py's for the scale, so other benchmarks reuse what it made."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="--scale quick")
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument("--data", type=Path, default=None, help="FSDD folder (default: ../shared/data/fsdd)")
    parser.add_argument(
        "--work", type=Path, default=None, help="working folder (default: runs/bench-aed[-SCALE])"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    scale = SCALES["quick" if args.quick else args.scale]
    suffix = "" if scale.name == "full" else f"-{scale.name}"
    work = args.work or Path("runs") / f"bench-aed{suffix}"
    work.mkdir(parents=True, exist_ok=True)
    return args, scale, work, args.out or Path("benchmarks/results") / f"{benchmark}{suffix}.json"


def main(argv: list[str] | None = None) -> int:
    args, scale, work, out = parse_scaled(argv, __doc__, "aed")
    quick = scale.name == "quick"
    console = Console()
    started = time.perf_counter()
    torch.set_num_threads(2)
    fsdd = open_dataset(args.data, "fsdd")
    teacher_epochs, student_epochs = scale.teacher_epochs, scale.student_epochs
    seeds, hidden = scale.seeds, scale.hidden

    # 1-2. mixtures and their teachers
    manifest = _mixtures(fsdd, work, scale)
    mixtures = open_dataset(manifest)
    splits = make_splits(mixtures)
    sets = load_splits(
        splits, mixtures.labels, audio_format(mixtures.clips).front_end(), encode=MULTILABEL.encode_targets
    )
    small = {"cnn": {"channels": (8, 8, 16, 16)}, "ast": {"dim": 48, "depth": 2, "heads": 2}} if quick else {}
    small_fsdd = small.get("ast", {}) if scale.small_fsdd_teacher else {}
    teachers = []
    for family in ("ast", "cnn"):
        sizes = small.get(family, {}) if family == "cnn" else {}  # the AST at full size: the large teacher
        row = _teacher(mixtures, family, splits.name, work / f"teacher-{family}-mix", teacher_epochs, **sizes)
        teachers.append(row)
        console.print(f"mixtures: {family} teacher test mAP {row['test_map']:.3f}")
    best = max(teachers, key=lambda r: r["test_map"])
    teacher_dir = Path(best["folder"])
    teacher = load_model(teacher_dir).model.eval()
    # the student's input is the teacher's, made streamable by the lstm family
    cached = teacher_logits(teacher, sets.train, cache_dir=teacher_dir / "cache")

    # 3. distillation against training alone, then quantized distillation
    distillation, student = _distillation(teacher, sets, MULTILABEL, cached, hidden, student_epochs, seeds)
    quantized = _quantized(student, teacher_dir, sets, MULTILABEL, cached, scale.quantized_epochs, work)
    latency = _format_latencies(teacher_dir, student, work, scale)

    # 4. FSDD single-label
    fsdd_rows = {}
    for split in scale.fsdd_splits:
        name = split.replace(":", "-")
        fsdd_sets = load_splits(make_splits(fsdd, split), fsdd.labels, audio_format(fsdd.clips).front_end())
        row = _teacher(
            fsdd, "ast", split, work / f"teacher-ast-{name}", scale.fsdd_teacher_epochs, **small_fsdd
        )
        fsdd_teacher = load_model(row["folder"]).model.eval()
        fsdd_cached = teacher_logits(fsdd_teacher, fsdd_sets.train, cache_dir=Path(row["folder"]) / "cache")
        figures, _ = _distillation(
            fsdd_teacher, fsdd_sets, CLASSIFICATION, fsdd_cached, hidden, student_epochs, seeds
        )
        fsdd_rows[split] = {"teacher": row, **figures}

    # 6. search and pick at 10% of the teacher's latency
    search = _search_and_pick(teacher_dir, work, scale, console)

    result = {
        "paretone_version": __version__,
        "quick": quick,
        "scale": asdict(scale),
        "seconds": round(time.perf_counter() - started, 1),
        "mixtures": {"manifest": str(manifest), "split": splits.name, "sizes": splits.sizes(),
                     "settings": json.loads((manifest.parent / "mix.json").read_text())["settings"]},
        "teachers": teachers,
        "teacher_for_students": best["family"],
        "distillation": distillation,
        "quantized": quantized,
        "format_latency": latency,
        "fsdd": fsdd_rows,
        "search": search,
        "distilled_map_error_reduction": distillation["map"]["error_reduction"],
        "distilled_f1_micro_error_reduction": distillation["f1_micro"]["error_reduction"],
        "quantized_share_of_teacher_file": quantized["share_of_teacher_file"],
        "quantized_share_of_float_student_file": quantized["share_of_float_student_file"],
        "search_pick_latency_ratio": search["latency_ratio"],
    }  # fmt: skip
    write_json(out, result)

    rows = [
        (t["family"], f"{t['test_map']:.3f}", f"{t.get('test_f1_micro', 0):.3f}", f"{t['params']:,}")
        for t in teachers
    ]
    _table("teachers on the mixtures", rows, ("family", "test mAP", "F1 micro", "params"), console)
    rows = [(k, f"{v['alone']:.3f}", f"{v['distilled']:.3f}", f"{v['error_reduction']:.1%}")
            for k, v in distillation.items() if isinstance(v, dict)]  # fmt: skip
    _table(
        f"LSTM {hidden} student on mixtures",
        rows,
        ("metric", "alone", "distilled", "error reduction"),
        console,
    )
    q = quantized
    console.print(
        f"quantized student: {q['quantized_student_file_bytes']:,} bytes = "
        f"{q['share_of_teacher_file']:.1%} of the "
        f"teacher's file, {q['share_of_float_student_file']:.1%} of the float student's; mAP cost "
        f"{q['map_cost_points']:.2f} points"
    )
    _table("latency, 1 thread, side by side", [(n, f"{v['latency_ms']:.3f}", f"{v['vs_lstm_float']:.2f}x")
           for n, v in latency.items()], ("model", "ms", "vs LSTM float"), console)  # fmt: skip
    for split, fig in fsdd_rows.items():
        a = fig["accuracy"]
        console.print(f"FSDD {split}: LSTM alone {a['alone']:.3f}, distilled {a['distilled']:.3f}, "
                      f"error reduction {a['error_reduction']:.1%}")  # fmt: skip
    console.print(
        f"search at 10%: picked {search['picked_student']} trial {search['picked_trial']}, mAP "
        f"{search['picked_test_map']:.3f} vs teacher {search['teacher_test_map']:.3f}, latency "
        f"{search['latency_ratio']:.3f}x the teacher's (limit {search['limit_ms']:.3f} ms)"
    )
    console.print(f"wrote {out} ({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
