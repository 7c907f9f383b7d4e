"""The search's driver decodes the audio once and its workers read it from Ray's object store."""

from __future__ import annotations

import pytest
import torch

from paretone.audio import SplitSets, WaveformSet
from paretone.compress import Recipe
from paretone.evaluators import TrialEvaluator, load_context


def _sets() -> SplitSets:
    part = lambda n: WaveformSet(torch.randn(n, 80), torch.arange(n) % 3)  # noqa: E731
    return SplitSets(part(5), part(3), part(2))


def test_split_sets_travel_as_numpy_arrays_and_come_back_without_a_copy() -> None:
    sets = _sets()
    arrays = sets.to_arrays()
    assert sorted(arrays) == sorted(
        f"{p}.{f}" for p in ("train", "validation", "test") for f in ("waveforms", "targets")
    )
    for array in arrays.values():
        array.flags.writeable = False  # as Ray's object store hands them out
    back = SplitSets.from_arrays(arrays)
    for part in ("train", "validation", "test"):
        ours, theirs = getattr(sets, part), getattr(back, part)
        assert torch.equal(ours.waveforms, theirs.waveforms) and torch.equal(ours.targets, theirs.targets)
        assert theirs.waveforms.data_ptr() == arrays[f"{part}.waveforms"].ctypes.data  # the same memory
        assert theirs.targets.dtype == torch.long


def test_a_context_refuses_decoded_sets_of_another_split(tiny_teacher) -> None:
    with pytest.raises(ValueError, match=r"are not split .*'s"):
        load_context(tiny_teacher, sets=_sets())


def _unreadable_copy(fsdd, tmp_path):
    """FSDD's file names with nothing decodable in them: a worker that decodes fails on the first."""
    (tmp_path / "recordings").mkdir(parents=True)
    for wav in (fsdd / "recordings").glob("*.wav"):
        (tmp_path / "recordings" / wav.name).write_bytes(b"not audio")
    return tmp_path


@pytest.mark.slow  # starts Ray workers, fine-tunes
def test_workers_fine_tune_on_the_drivers_audio_without_decoding_any(
    tiny_teacher, fsdd, tmp_path, local_ray
) -> None:
    import ray

    from paretone.search import WorkerSetup
    from paretone.search._workers import start_worker

    data = _unreadable_copy(fsdd, tmp_path / "data")
    audio = ray.put(load_context(tiny_teacher).sets.to_arrays())  # decoded here, from the real files
    shared = start_worker(WorkerSetup(str(tiny_teacher), str(data), None, audio=audio))
    result = ray.get(shared.fine_tune.remote(Recipe().to_dict(), 1, str(tmp_path / "shared")))
    on_files = TrialEvaluator(tiny_teacher).fine_tune(
        Recipe().to_dict(), epochs=1, out_dir=tmp_path / "files"
    )
    assert result.score == pytest.approx(on_files.score, abs=0.02) and result.score > 0.3  # chance: 0.1

    decoding = start_worker(WorkerSetup(str(tiny_teacher), str(data), None))  # decodes the junk itself
    with pytest.raises(ray.exceptions.RayActorError, match="cannot read audio"):
        ray.get(decoding.fine_tune.remote(Recipe().to_dict(), 1, str(tmp_path / "decoding")))
    for worker in (shared, decoding):
        ray.kill(worker)
