"""Ray workers that fine-tune trials: one actor per worker, each holding its own TrialEvaluator.

Each actor declares the CPU and memory it needs, so Ray places it on a node that has them (the
local machine by default, any node of an existing cluster with ``ray_address``). A worker that
dies (killed, out of memory, node lost) surfaces as an error on its pending trial: the driver
records the reason, retries the trial once and starts a fresh worker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

TRIAL_CPUS = 1
TRIAL_MEMORY_BYTES = 3 * 1024**3  # teacher + student + decoded FSDD, with margin


@dataclass(frozen=True)
class WorkerSetup:
    """Plain arguments every worker needs to load the teacher and its data."""

    teacher_dir: str
    data: str | None
    split: str | None
    threads: int = TRIAL_CPUS


def start_ray(address: str | None, workers: int) -> bool:
    """Join ``address`` or start a local Ray; True if this call started it (and should stop it)."""
    import ray

    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address:
        ray.init(address=address, **options)
    else:
        cpus = max(workers * TRIAL_CPUS, os.cpu_count() or 1)
        ray.init(num_cpus=cpus, **options)
    return True


def _worker_class() -> Any:
    import ray

    from paretone.evaluators import TrialEvaluator

    @ray.remote(num_cpus=TRIAL_CPUS, memory=TRIAL_MEMORY_BYTES, max_restarts=0)
    class TrialWorker:
        def __init__(self, setup: WorkerSetup) -> None:
            self._evaluator = TrialEvaluator(
                setup.teacher_dir, data=setup.data, split=setup.split, threads=setup.threads
            )

        def pid(self) -> int:
            return os.getpid()

        def fine_tune(self, recipe: dict[str, Any], epochs: int, out_dir: str) -> dict[str, Any]:
            return self._evaluator.fine_tune(recipe, epochs=epochs, out_dir=out_dir)

    return TrialWorker


def start_worker(setup: WorkerSetup) -> Any:
    """A new actor handle (its constructor loads the data in the background)."""
    return _worker_class().remote(setup)


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
