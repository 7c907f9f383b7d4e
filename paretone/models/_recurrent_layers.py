"""Recurrent layers (single-layer, batch-first ``nn.LSTM``/``nn.GRU``) that count their MACs, run
a step from a given state, and export as one ONNX ``LSTM``/``GRU`` node each.

torch.export would trace a recurrent layer step by step through its Python decomposition (half a
minute for 100 frames); exported as a custom op with a shape-only fake, it takes seconds, and the
translation writes the ONNX node with the gates in ONNX's order.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from onnx import helper
from torch import nn

from paretone.models._onnx import register_translation

GATES = {"lstm": 4, "gru": 3}


@torch.library.custom_op("paretone::recurrent", mutates_args=())
def recurrent_layer(
    x: torch.Tensor,
    w_ih: torch.Tensor,
    w_hh: torch.Tensor,
    b_ih: torch.Tensor,
    b_hh: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    cell: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(batch, frames, inputs) and the state (1, batch, hidden) each -> outputs (batch, frames,
    hidden) and the new state, as nn.LSTM/nn.GRU compute them (a GRU passes ``c0`` through)."""
    flat = [w_ih, w_hh, b_ih, b_hh]
    if cell == "lstm":
        y, h, c = torch._VF.lstm(x, (h0, c0), flat, True, 1, 0.0, False, False, True)
        return y, h, c
    y, h = torch._VF.gru(x, h0, flat, True, 1, 0.0, False, False, True)
    return y, h, c0.clone()


@recurrent_layer.register_fake
def _(x, w_ih, w_hh, b_ih, b_hh, h0, c0, cell):
    return x.new_empty(x.shape[0], x.shape[1], w_hh.shape[1]), torch.empty_like(h0), torch.empty_like(c0)


# PyTorch's gate blocks in ONNX's order: LSTM (i, f, g, o) -> (i, o, f, c); GRU (r, z, n) -> (z, r, h)
ONNX_GATE_ORDER = {"lstm": (0, 3, 1, 2), "gru": (1, 0, 2)}


def _onnx_recurrent(x: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any, h0: Any, c0: Any, cell: str) -> Any:
    from onnxscript import opset18 as op

    hidden = int(w_hh.shape[1])
    rows = np.concatenate([np.arange(g * hidden, (g + 1) * hidden) for g in ONNX_GATE_ORDER[cell]])
    order = op.Constant(value=helper.make_tensor("gate_rows", 7, [len(rows)], rows.tolist()))

    def onnx_layout(weight: Any) -> Any:
        return op.Unsqueeze(op.Gather(weight, order, axis=0), [0])

    bias = op.Concat(onnx_layout(b_ih), onnx_layout(b_hh), axis=1)
    frames_first = op.Transpose(x, perm=[1, 0, 2])
    w, r = onnx_layout(w_ih), onnx_layout(w_hh)
    if cell == "lstm":
        y, h, c = op.LSTM(frames_first, w, r, bias, None, h0, c0, hidden_size=hidden)
    else:
        y, h = op.GRU(frames_first, w, r, bias, None, h0, hidden_size=hidden, linear_before_reset=1)
        c = op.Identity(c0)
    return op.Transpose(op.Squeeze(y, [1]), perm=[1, 0, 2]), h, c


register_translation(torch.ops.paretone.recurrent.default, _onnx_recurrent)


class _RecurrentLayer:
    """A single-layer, batch-first nn.LSTM/nn.GRU that counts its MACs (every gate multiplies the
    frame's input and the previous state) and exports as one ONNX node.

    ``step(x, h, c)`` runs from a given state and returns the new one (a GRU's ``c`` is unused and
    passed through), the form a streaming export takes."""

    input_size: int
    hidden_size: int
    cell: ClassVar[str]

    def count_macs(self, inputs: tuple[torch.Tensor, ...], output: Any) -> int:
        frames = inputs[0].shape[0] * inputs[0].shape[1]  # batch x time
        return frames * GATES[self.cell] * self.hidden_size * (self.input_size + self.hidden_size)

    def zero_state(self, batch: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = like.new_zeros(1, batch, self.hidden_size)
        return zeros, zeros

    def step(
        self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        weights = (self.weight_ih_l0, self.weight_hh_l0, self.bias_ih_l0, self.bias_hh_l0)  # type: ignore[attr-defined]
        if torch.compiler.is_exporting():
            return recurrent_layer(x, *weights, h, c, self.cell)
        if self.cell == "lstm":
            y, (h, c) = super().forward(x, (h, c))  # type: ignore[misc]
            return y, h, c
        y, h = super().forward(x, h)  # type: ignore[misc]
        return y, h, c

    def forward(self, x: torch.Tensor, *state: Any) -> Any:
        """As nn.LSTM/nn.GRU; ``layer(x, h, c)`` (two state tensors) is ``step`` (so an export's node
        carries the layer's name)."""
        if len(state) == 2 and all(isinstance(s, torch.Tensor) for s in state):
            return self.step(x, *state)
        if torch.compiler.is_exporting() and not state:
            y, _, _ = self.step(x, *self.zero_state(x.shape[0], x))
            return y, None
        return super().forward(x, *state)  # type: ignore[misc]


class LSTMLayer(_RecurrentLayer, nn.LSTM):
    cell = "lstm"


class GRULayer(_RecurrentLayer, nn.GRU):
    cell = "gru"


LAYER_TYPES: dict[str, type[nn.Module]] = {"lstm": LSTMLayer, "gru": GRULayer}
