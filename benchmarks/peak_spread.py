"""How steady is a peak-memory measurement? Fresh processes, with and without allocator knobs.

    python benchmarks/peak_spread.py        # 6 random students of the default AST, 7 processes each

Each sample is a fresh process loading the model in ONNX Runtime and running it three times; the
figure is its resident-memory high-water mark minus its resident memory before the session (as
``runtime.measure_peak_bytes`` measures). Variants: as shipped; glibc with one malloc arena; one
arena and no trimming or mmap; ONNX Runtime's CPU arena off; both; the address-space layout not
randomised (``setarch -R``). Writes JSON and prints, per variant, the median over models of the
range (max - min) between processes. Found: only the last nearly removes the spread (0.01 MB for 5
of 6 models, against 0.34-0.99 MB as shipped), so the spread is mostly the layout the OS draws per
process, not the allocators.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from paretone._io import write_json
from paretone._version import __version__
from paretone.hw_models import export_model, random_models
from paretone.models import ASTConfig, build_model

# the shipped measurement (runtime.measure_peak_bytes's child), with the arena as a switch
CHILD = (
    "import sys; from paretone.runtime._kit_runner import _peak_in_this_process as peak; "
    "print(peak(sys.argv[1], 1, arena=sys.argv[2] == '1'))"
)
STEADY_MALLOC = {
    "MALLOC_ARENA_MAX": "1",
    "MALLOC_TRIM_THRESHOLD_": "1000000000",
    "MALLOC_MMAP_THRESHOLD_": "1000000000",
}
NO_ASLR = ["setarch", "-R"]  # util-linux: this process and its children without address randomisation
VARIANTS: dict[str, tuple[dict[str, str], bool, list[str]]] = {
    "as shipped": ({}, True, []),
    "one malloc arena": ({"MALLOC_ARENA_MAX": "1"}, True, []),
    "one arena, no trim or mmap": (STEADY_MALLOC, True, []),
    "ONNX Runtime arena off": ({}, False, []),
    "both": (STEADY_MALLOC, False, []),
    "address-space randomisation off": ({}, True, NO_ASLR),
}  # fmt: skip


def _sample(path: Path, env: dict[str, str], arena: bool, launcher: list[str]) -> int:
    done = subprocess.run(
        [*launcher, sys.executable, "-c", CHILD, str(path), "1" if arena else "0"],
        capture_output=True, text=True, env={**os.environ, **env}, check=True,
    )  # fmt: skip
    return int(done.stdout.strip().splitlines()[-1])


def main() -> int:
    torch.manual_seed(0)
    teacher = build_model(ASTConfig.uniform(num_classes=10)).eval()
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for model in random_models(teacher, 6, seed=777, prefix="spread"):
            paths.append(Path(tmp) / f"{model.name}.onnx")
            export_model(teacher, model.recipe, paths[-1])
        for name, (env, arena, launcher) in VARIANTS.items():
            if launcher and shutil.which(launcher[0]) is None:
                print(f"{name}: skipped, {launcher[0]} is not installed", flush=True)
                continue
            results[name] = {}
            for path in paths:
                samples = [_sample(path, env, arena, launcher) for _ in range(7)]
                results[name][path.stem] = {
                    "median_mb": statistics.median(samples) / 1e6,
                    "mean_mb": statistics.fmean(samples) / 1e6,
                    "range_mb": (max(samples) - min(samples)) / 1e6,
                }
            ranges = [r["range_mb"] for r in results[name].values()]
            print(f"{name}: range between processes {statistics.median(ranges):.2f} MB median, "
                  f"{max(ranges):.2f} MB worst", flush=True)  # fmt: skip
    out = Path("benchmarks/results/peak-spread.json")
    write_json(out, {"paretone_version": __version__, "processes": 7, "variants": results})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
