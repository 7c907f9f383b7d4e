"""Ray workers that fine-tune trials: one actor per worker, each holding its own TrialEvaluator.

Each actor declares the CPU and memory it needs, so Ray places it on a node that has them (the
local machine by default, any node of an existing cluster with ``ray_address``). A worker that
dies (killed, out of memory, node lost) surfaces as an error on its pending trial: the driver
records the reason, retries the trial once and starts a fresh worker.

A worker also polices its own memory: past its cap (the memory it declared to Ray) it leaves the
reason in the trial's folder (``failure.json``) and kills itself, so one greedy trial fails with that
reason instead of driving the machine into swap or the kernel's OOM killer.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paretone._io import read_json, write_json
from paretone.errors import ConfigError

TRIAL_CPUS = 1
TRIAL_MEMORY_BYTES = 3 * 1024**3  # teacher, student, training state and the mapped audio, with margin
FAILURE_FILE = "failure.json"  # written into the trial folder by a worker that kills itself


@dataclass(frozen=True)
class WorkerSetup:
    """Plain arguments every worker needs to load the teacher and its data."""

    teacher_dir: str
    data: str | None
    split: str | None
    threads: int = TRIAL_CPUS
    memory_bytes: int = TRIAL_MEMORY_BYTES  # declared to Ray and enforced while fine-tuning
    gpus: float = 0.0  # declared to Ray; above 0 the worker fine-tunes on CUDA
    # a Ray ObjectRef to the splits and their decoded audio (``evaluators.DecodedAudio``), put once
    # by the driver: the workers of a node share one copy and neither decode nor read the dataset
    # (None: each decodes its own)
    audio: Any = None

    @property
    def device(self) -> str:
        return "cuda" if self.gpus > 0 else "cpu"


class MemoryCap:
    """While a trial runs, poll this process's resident memory; past ``cap_bytes``, write the reason
    to ``<trial folder>/failure.json`` and SIGKILL the process (the driver reads the reason)."""

    def __init__(self, cap_bytes: int, *, interval_s: float = 0.05) -> None:
        self.cap_bytes, self.interval_s = cap_bytes, interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def resident_bytes() -> int:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")

    def watch(self, trial_dir: str) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, args=(Path(trial_dir),), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _poll(self, trial_dir: Path) -> None:
        while not self._stop.wait(self.interval_s):
            used = self.resident_bytes()
            if used > self.cap_bytes:
                reason = (
                    f"worker memory {used / 1e6:.0f} MB exceeded its cap of {self.cap_bytes / 1e6:.0f} MB; "
                    "give workers more with --worker-memory-mb or narrow the space"
                )
                write_json(trial_dir / FAILURE_FILE, {"reason": reason})
                os.kill(os.getpid(), signal.SIGKILL)


def failure_note(trial_dir: Path) -> str | None:
    """The reason a worker left before killing itself, if any."""
    try:
        return str(read_json(trial_dir / FAILURE_FILE, missing="", fix="")["reason"])
    except (ConfigError, KeyError, TypeError):
        return None


def start_ray(address: str | None, workers: int) -> bool:
    """Join ``address`` or start a local Ray; True if this call started it (and should stop it)."""
    import ray

    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address:
        ray.init(address=address, **options)
    else:
        # "local": a Ray of its own, even where `ray start` left a cluster (or its stale address)
        cpus = max(workers * TRIAL_CPUS, os.cpu_count() or 1)
        ray.init(address="local", num_cpus=cpus, **options)
    return True


def _worker_class() -> Any:
    import ray

    from paretone.evaluators import TrialEvaluator

    @ray.remote(num_cpus=TRIAL_CPUS, max_restarts=0)
    class TrialWorker:
        def __init__(self, setup: WorkerSetup) -> None:
            decoded = None if setup.audio is None else ray.get(setup.audio)
            self._evaluator = TrialEvaluator(
                setup.teacher_dir,
                data=setup.data,
                split=setup.split,
                threads=setup.threads,
                device=setup.device,
                decoded=decoded,
            )
            self._cap = MemoryCap(setup.memory_bytes)

        def pid(self) -> int:
            return os.getpid()

        def fine_tune(self, recipe: dict[str, Any], epochs: int, out_dir: str) -> Any:
            self._cap.watch(out_dir)
            try:
                return self._evaluator.fine_tune(recipe, epochs=epochs, out_dir=out_dir)
            finally:
                self._cap.stop()

    return TrialWorker


def start_worker(setup: WorkerSetup) -> Any:
    """A new actor handle (its constructor loads the data in the background)."""
    return _worker_class().options(memory=setup.memory_bytes, num_gpus=setup.gpus).remote(setup)


def check_gpus(gpus_per_worker: float, available: float, where: str = "the Ray cluster") -> None:
    """ConfigError before any worker starts if ``where`` cannot give one worker its GPUs (Ray would
    otherwise leave the actor pending forever)."""
    if gpus_per_worker > available:
        raise ConfigError(
            f"--gpus-per-worker {gpus_per_worker:g}: {where} has {available:g} GPUs; run on a machine or "
            "cluster with a CUDA GPU (Ray finds them itself), or drop --gpus-per-worker"
        )


def failure_reason(error: BaseException) -> tuple[str, bool]:
    """(one-line reason, whether the worker itself died) for an exception from ``ray.get``."""
    import ray

    if isinstance(error, ray.exceptions.RayTaskError):
        cause = error.cause if error.cause is not None else error
        return f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}".strip(), False
    if isinstance(error, ray.exceptions.OutOfMemoryError):
        return "worker exceeded its memory and was killed (out of memory)", True
    if isinstance(error, (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError)):
        detail = next((line.strip() for line in str(error).splitlines() if "Error" in line), "")
        return f"worker died: {type(error).__name__} {detail}".strip()[:300], True
    return f"{type(error).__name__}: {error}", False
