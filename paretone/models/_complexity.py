"""MACs and parameters, counted with thop at batch size 1 on the model's real input shape.

A module with a ``count_macs(inputs, output)`` method (``DenseWeightConv``, a family's fixed
feature transforms) counts itself, as a dense layer: its MACs are what its Conv/MatMul nodes do.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import thop
import torch
import torchaudio
from thop.vision.basic_hooks import count_convNd, count_linear
from torch import nn

from paretone.audio import DFTMelSpectrogram
from paretone.models._base import AudioModel, MatMul

# Layers whose MACs an ONNX graph shows as Conv, MatMul or Gemm nodes (see hw_models.onnx_macs).
DENSE_LAYERS = (nn.Conv2d, nn.Linear, MatMul, torchaudio.transforms.MelScale, DFTMelSpectrogram)


@dataclass(frozen=True)
class Complexity:
    """``macs``: thop's total per clip. ``dense_macs``: the part in convs and matmuls (including the
    mel filterbank), which is what an ONNX graph's Conv/MatMul/Gemm nodes add up to."""

    macs: int
    dense_macs: int
    params: int


def _count_matmul(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
    module.total_ops += torch.DoubleTensor([output.numel() * inputs[0].shape[-1]])


def _count_mel_scale(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
    # (batch, n_freqs, frames) x (n_freqs, n_mels): one MAC per output element and frequency bin.
    module.total_ops += torch.DoubleTensor([output.numel() * inputs[0].shape[-2]])


def _count_dft_mel(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
    # the DFT as a strided conv (cos and sin rows), then the mel filterbank matmul
    frames = output.shape[-1]
    dft = 2 * module.n_freqs * module.n_fft * frames
    module.total_ops += torch.DoubleTensor(
        [output.shape[0] * (dft + output.shape[1] * module.n_freqs * frames)]
    )


def _count_own(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
    module.total_ops += torch.DoubleTensor([module.count_macs(inputs, output)])


def count_complexity(model: AudioModel) -> Complexity:
    """Count on a deep copy: thop leaves ``total_ops`` buffers behind on modules it has no rule for."""
    probe = copy.deepcopy(model).eval()
    waveform = torch.zeros(1, model.front_end.config.clip_samples)
    custom = {
        MatMul: _count_matmul,
        torchaudio.transforms.MelScale: _count_mel_scale,
        DFTMelSpectrogram: _count_dft_mel,
    }
    for module in probe.modules():  # thop matches exact types; count subclasses (fake-quant layers) too
        if hasattr(module, "count_macs"):  # a module that knows its own dense MACs (DenseWeightConv, ...)
            custom[type(module)] = _count_own
        elif isinstance(module, nn.Linear) and type(module) is not nn.Linear:
            custom[type(module)] = count_linear
        elif isinstance(module, nn.Conv2d) and type(module) is not nn.Conv2d:
            custom[type(module)] = count_convNd
    macs, _, layers = thop.profile(
        probe, inputs=(waveform,), custom_ops=custom, verbose=False, ret_layer_info=True
    )
    modules = dict(probe.named_modules())
    dense = 0.0

    def walk(prefix: str, tree: dict) -> None:
        nonlocal dense
        for name, (ops, _, children) in tree.items():
            full = f"{prefix}{name}"
            if isinstance(modules[full], DENSE_LAYERS) or hasattr(modules[full], "count_macs"):
                dense += ops
            else:
                walk(f"{full}.", children)

    walk("", layers)
    params = sum(p.numel() for p in model.parameters())
    return Complexity(macs=int(macs), dense_macs=int(dense), params=params)
