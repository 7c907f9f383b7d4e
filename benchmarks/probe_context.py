"""Why the speed probe and a validation campaign disagree: the same anchors timed in both ways.

    python benchmarks/probe_context.py            # 8 rounds (about 6 minutes)
    python benchmarks/probe_context.py --rounds 3

The quick speed-probe run read the device 0.90x as fast as at calibration while the held-out models
and the probe's own anchors, timed inside the campaign's passes, ran 1.05-1.10x slower. This
calibrates a fresh profile for the default AST teacher, then alternates, round after round, the
three ways the code times a model:

- ``probe``: ``probe_speed`` (sentinels and anchors interleaved, 3 passes of 15 runs, 3 warm-up);
- ``probe_long``: the same files with the campaign's runs (3 passes of 40 runs, 10 warm-up);
- ``campaign``: the anchors and 8 of the profile's calibration models, timed as a validation
  campaign times them (``measure_latencies`` defaults, 3 passes).

Per round and way: the anchors' time over their probe reference (``Anchor.latency_ms``, what the
probe divides by) and over their calibration measurement (``profile.models``, what the kernels and
the in-pass correction divide by), and the calibration models' drift. Writes JSON to --out.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from paretone._io import write_json
from paretone._version import __version__
from paretone.compress import Recipe
from paretone.hw_models import DeviceProfile, calibrate, probe_speed
from paretone.hw_models._kit import export_model
from paretone.hw_models._probe import PROBE_PASSES, anchor_files, sentinel_files
from paretone.models import ASTConfig, build_model
from paretone.runtime import measure_latencies


def _ratios(times: list[float], reference: list[float]) -> float:
    return statistics.median(t / r for t, r in zip(times, reference, strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/probe-context.json"))
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    console = Console(width=150)
    teacher = build_model(ASTConfig.uniform(num_classes=10)).eval()
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        summary = calibrate(device="bench", profile_dir=tmp, teacher=teacher, models=10, passes=3)
        profile = DeviceProfile.load(summary.profile)
        folder = summary.profile.parent
        anchors = anchor_files(profile, folder)
        probe_ref = [a.latency_ms for a in profile.anchors]
        calib_ref = [profile.models[a.name].latency_ms for a in profile.anchors]
        sentinels = sentinel_files(folder, [s.kernel for s in profile.probe])
        sentinel_ref = [s.latency_ms for s in profile.probe]
        again = [m for m in profile.models.values() if m.recipe is not None][:8]
        model_paths = [Path(tmp) / f"{m.name}.onnx" for m in again]
        for path, m in zip(model_paths, again, strict=True):
            export_model(teacher, Recipe.from_dict(m.recipe), path)  # type: ignore[arg-type]
        n = len(sentinels)
        for round_index in range(args.rounds):
            at = round(time.perf_counter() - started, 1)
            probe = probe_speed(profile, folder)
            long = measure_latencies(sentinels + anchors, threads=profile.threads, passes=PROBE_PASSES)
            campaign = measure_latencies(model_paths + anchors, threads=profile.threads, passes=PROBE_PASSES)
            long_anchor_ms = [m.latency_ms for m in long[n:]]
            campaign_anchor_ms = [m.latency_ms for m in campaign[len(model_paths) :]]
            rows.append({
                "round": round_index,
                "at_s": at,
                "probe_sentinels": probe.overall,
                "probe_anchors_over_probe_ref": probe.anchor_factor,
                "probe_long_sentinels": _ratios([m.latency_ms for m in long[:n]], sentinel_ref),
                "probe_long_anchors_over_probe_ref": _ratios(long_anchor_ms, probe_ref),
                "probe_long_anchors_over_calibration": _ratios(long_anchor_ms, calib_ref),
                "campaign_anchors_over_probe_ref": _ratios(campaign_anchor_ms, probe_ref),
                "campaign_anchors_over_calibration": _ratios(campaign_anchor_ms, calib_ref),
                "campaign_models_drift": _ratios(
                    [m.latency_ms for m in campaign[: len(model_paths)]], [m.latency_ms for m in again]
                ),
            })  # fmt: skip
            console.print(rows[-1])
    result = {
        "paretone_version": __version__,
        "device": profile.fingerprint,
        "seconds": round(time.perf_counter() - started, 1),
        "anchor_probe_ref_over_calibration": [p / c for p, c in zip(probe_ref, calib_ref, strict=True)],
        "rounds": rows,
        "median": {k: statistics.median(r[k] for r in rows) for k in rows[0] if k not in ("round", "at_s")},
    }
    write_json(args.out, result)
    table = Table(title="median over rounds: time now over the reference")
    table.add_column("way and reference")
    table.add_column("ratio", justify="right")
    for key, value in result["median"].items():
        table.add_row(key, f"{value:.3f}")
    console.print(table)
    refs = ", ".join(f"{r:.3f}" for r in result["anchor_probe_ref_over_calibration"])
    console.print(f"anchors' probe reference over their calibration time: {refs}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
