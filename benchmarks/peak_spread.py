"""How steady is a peak-memory measurement? Fresh processes, with and without allocator knobs.

    python benchmarks/peak_spread.py        # 6 random students of the default AST, 7 processes each

Each sample is a fresh process loading the model in ONNX Runtime and running it three times; the
figure is its resident-memory high-water mark minus its resident memory before the session (as
``runtime.measure_peak_bytes`` measures). Variants: as shipped; glibc with one malloc arena; one
arena and no trimming or mmap; ONNX Runtime's CPU arena off; both. Writes JSON and prints, per
variant, the median over models of the range (max - min) between processes.
"""

from __future__ import annotations

import os
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

CHILD = r"""
import contextlib, sys
from pathlib import Path
import numpy as np, onnxruntime as ort
path, arena = sys.argv[1], sys.argv[2] == "1"
def mem(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
with contextlib.suppress(OSError):
    Path("/proc/self/clear_refs").write_text("5")
free = mem("VmRSS")
o = ort.SessionOptions()
o.intra_op_num_threads, o.inter_op_num_threads, o.log_severity_level = 1, 1, 3
o.enable_cpu_mem_arena = arena
s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
rng = np.random.default_rng(0)
feeds = {i.name: (rng.standard_normal([d if isinstance(d, int) else 1 for d in i.shape]) * 0.1)
         .astype(np.float32) for i in s.get_inputs()}
for _ in range(3):
    s.run(None, feeds)
print(max(mem("VmHWM"), mem("VmRSS")) - free)
"""
STEADY_MALLOC = {
    "MALLOC_ARENA_MAX": "1",
    "MALLOC_TRIM_THRESHOLD_": "1000000000",
    "MALLOC_MMAP_THRESHOLD_": "1000000000",
}
VARIANTS: dict[str, tuple[dict[str, str], bool]] = {
    "as shipped": ({}, True),
    "one malloc arena": ({"MALLOC_ARENA_MAX": "1"}, True),
    "one arena, no trim or mmap": (STEADY_MALLOC, True),
    "ONNX Runtime arena off": ({}, False),
    "both": (STEADY_MALLOC, False),
}  # fmt: skip


def _sample(path: Path, env: dict[str, str], arena: bool) -> int:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), "1" if arena else "0"],
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
        for name, (env, arena) in VARIANTS.items():
            results[name] = {}
            for path in paths:
                samples = [_sample(path, env, arena) for _ in range(7)]
                results[name][path.stem] = {
                    "median_mb": statistics.median(samples) / 1e6,
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
