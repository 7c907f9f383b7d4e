from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch

from paretone.audio import fit_length, load_waveforms, read_waveform
from paretone.errors import DataError
from tests.helpers import write_tone


def test_real_fsdd_clip_is_read_at_fixed_length(fsdd):
    path = fsdd / "recordings" / "3_theo_10.wav"
    raw, rate = soundfile.read(path, dtype="float32")
    wave = read_waveform(path, sample_rate=8000, clip_samples=8000)
    assert rate == 8000 and wave.shape == (8000,) and wave.dtype == torch.float32
    # centre-padded: the original samples sit unchanged in the middle
    left = (8000 - len(raw)) // 2
    assert len(raw) < 8000
    assert torch.equal(wave[left : left + len(raw)], torch.from_numpy(raw))
    assert torch.equal(read_waveform(path, sample_rate=8000, clip_samples=8000), wave)


def test_resampling_keeps_pitch_and_duration(tmp_path):
    path = write_tone(tmp_path / "tone.wav", seconds=1.0, rate=16000, freq=1000.0)
    wave = read_waveform(path, sample_rate=8000, clip_samples=8000).numpy()
    spectrum = np.abs(np.fft.rfft(wave))
    assert np.argmax(spectrum) == pytest.approx(1000, abs=2)  # 1 Hz bins at 8 kHz over 1 s


def test_stereo_is_mixed_to_mono(tmp_path):
    stereo = np.stack([np.full(100, 0.2), np.full(100, 0.6)], axis=1).astype(np.float32)
    soundfile.write(tmp_path / "s.wav", stereo, 8000)
    wave = read_waveform(tmp_path / "s.wav", sample_rate=8000, clip_samples=100)
    assert torch.allclose(wave, torch.full((100,), 0.4), atol=1e-4)  # 16-bit PCM


def test_fit_length_crops_the_centre_and_pads_both_sides():
    wave = torch.arange(10.0)
    assert fit_length(wave, 4).tolist() == [3.0, 4.0, 5.0, 6.0]
    assert fit_length(torch.ones(3), 6).tolist() == [0.0, 1.0, 1.0, 1.0, 0.0, 0.0]


def test_empty_wav_is_refused(tmp_path):
    soundfile.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 8000)
    with pytest.raises(DataError, match=r"empty\.wav: the audio file is empty"):
        read_waveform(tmp_path / "empty.wav", sample_rate=8000, clip_samples=8000)


def test_truncated_wav_header_is_refused(tmp_path, fsdd):
    data = (fsdd / "recordings" / "0_george_0.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[:20])
    with pytest.raises(DataError, match=r"cut\.wav: cannot read audio"):
        read_waveform(tmp_path / "cut.wav", sample_rate=8000, clip_samples=8000)


def test_load_waveforms_maps_labels_to_indices(fsdd_catalog):
    clips = [c for c in fsdd_catalog.clips if c.index == 0][:20]
    data = load_waveforms(clips, fsdd_catalog.labels, sample_rate=8000, clip_samples=8000)
    assert data.waveforms.shape == (20, 8000)
    assert data.targets.tolist() == [int(c.label) for c in clips]
