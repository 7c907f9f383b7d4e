"""The search's driver decodes the audio once and its workers read it from Ray's object store."""

from __future__ import annotations

import pytest
import torch

from paretone.audio import SplitSets, WaveformSet
from paretone.compress import Recipe, load_student
from paretone.evaluators import TrialEvaluator, load_context


def test_split_sets_travel_as_numpy_arrays_and_come_back_without_a_copy() -> None:
    part = lambda n: WaveformSet(torch.randn(n, 80), torch.arange(n) % 3)  # noqa: E731
    sets = SplitSets(part(5), part(3), part(2))
    arrays = sets.to_arrays()
    assert sorted(arrays) == sorted(
        f"{p}.{f}" for p in ("train", "validation", "test") for f in ("waveforms", "targets")
    )
    for array in arrays.values():
        array.flags.writeable = False  # as Ray's object store hands them out
    back = SplitSets.from_arrays(arrays)
    for name in ("train", "validation", "test"):
        ours, theirs = getattr(sets, name), getattr(back, name)
        assert torch.equal(ours.waveforms, theirs.waveforms) and torch.equal(ours.targets, theirs.targets)
        assert theirs.waveforms.data_ptr() == arrays[f"{name}.waveforms"].ctypes.data  # the same memory
        assert theirs.targets.dtype == torch.long


@pytest.mark.slow  # starts Ray workers, fine-tunes
def test_workers_fine_tune_on_the_drivers_audio_without_the_dataset(
    tiny_teacher, tmp_path, local_ray
) -> None:
    import ray

    from paretone.search import WorkerSetup
    from paretone.search._workers import start_worker

    decoded = load_context(tiny_teacher).decoded()  # decoded here, from the real files
    assert decoded.sets().train.waveforms.data_ptr() == decoded.arrays["train.waveforms"].ctypes.data
    absent = str(tmp_path / "no-data-on-this-node")  # as on a cluster node without the dataset
    shared = start_worker(WorkerSetup(str(tiny_teacher), absent, None, audio=ray.put(decoded)))
    result = ray.get(shared.fine_tune.remote(Recipe().to_dict(), 1, str(tmp_path / "shared")))
    in_process = TrialEvaluator(tiny_teacher)  # decodes the real files
    on_files = in_process.fine_tune(Recipe().to_dict(), epochs=1, out_dir=tmp_path / "files")
    assert result.score == pytest.approx(on_files.score, abs=0.02) and result.score > 0.3  # chance: 0.1
    assert load_student(tmp_path / "shared")[0].metadata["data"]["split"] == decoded.splits.name

    decoding = start_worker(WorkerSetup(str(tiny_teacher), absent, None))  # looks for the data itself
    with pytest.raises(ray.exceptions.RayActorError, match="no-data-on-this-node"):
        ray.get(decoding.fine_tune.remote(Recipe().to_dict(), 1, str(tmp_path / "decoding")))
    for worker in (shared, decoding):
        ray.kill(worker)
