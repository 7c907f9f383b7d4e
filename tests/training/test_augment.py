from __future__ import annotations

import torch

from paretone.training import TrainConfig, augment_waveforms, spec_augment


def test_spec_augment_zeroes_whole_bands_and_spans():
    config = TrainConfig(freq_masks=1, freq_mask_bins=8, time_masks=0)
    features = torch.ones(64, 32, 50)
    out = spec_augment(features, config, torch.Generator().manual_seed(0))
    zero_rows = (out == 0).all(dim=2)  # (batch, mels): a masked band is zero over all frames
    assert ((out == 0) == zero_rows.unsqueeze(2)).all()
    widths = zero_rows.sum(dim=1)
    assert widths.max() <= 8 and widths.float().mean() > 2


def test_augmentation_is_reproducible_and_keeps_shape():
    config = TrainConfig()
    waves = torch.randn(4, 8000) * 0.1
    a = augment_waveforms(waves, config, torch.Generator().manual_seed(3))
    b = augment_waveforms(waves, config, torch.Generator().manual_seed(3))
    assert a.shape == waves.shape and torch.equal(a, b)
    assert not torch.equal(a, waves)


def test_noise_respects_the_signal_to_noise_ratio():
    config = TrainConfig(shift_fraction=0, speed_range=0, noise_snr_db=(20.0, 20.0))
    waves = torch.randn(8, 8000)
    noisy = augment_waveforms(waves, config, torch.Generator().manual_seed(0))
    snr_db = 10 * torch.log10(waves.pow(2).mean() / (noisy - waves).pow(2).mean())
    assert abs(snr_db.item() - 20) < 0.5
