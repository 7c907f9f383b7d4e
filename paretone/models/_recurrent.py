"""The ``lstm`` and ``gru`` families: small unidirectional recurrent layers over log-mel frames.

The compact students of acoustic event detection (Shi et al., Interspeech 2019, distilled an LSTM
from a large teacher). Every part can stream: the front-end pads causally and normalises each mel
band with a BatchNorm (a per-utterance mean would wait for the clip's end), the layers run forward
in time, and a frame's logits depend only on audio up to it. A clip's logits pool the frame logits
with log-mean-exp, a smooth maximum, so an event anywhere in the clip can carry it.

The prunable unit of a layer is its hidden units: removing unit j removes its row in every gate of
the input and recurrent weights and biases, its recurrent column, and the next layer's (or the
head's) input j. Formats: ONNX Runtime runs an ``LSTM`` node in float or, quantized dynamically,
as ``DynamicQuantizeLSTM`` (int8 weights); it has no int8 GRU kernel, so GRU layers run float (see
``compress.RUNTIME_FORMATS``). The head is a linear layer with the linear formats.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from onnx import helper
from torch import nn

from paretone.audio import FrontEndConfig, LogMel, mel_interpolation
from paretone.errors import ConfigError
from paretone.models._base import AudioModel, linear_layer
from paretone.models._family import Elementwise, Family, SizeOption
from paretone.models._kernels import (
    LAYER_NODE,
    Dims,
    Graph,
    Kernel,
    KernelKind,
    LayerKernel,
    const,
    front_end_kernel,
    register_kernel_kind,
    value,
    weights,
    width_grid,
)
from paretone.models._recurrent_layers import GATES, LAYER_TYPES
from paretone.models._registry import register_family
from paretone.models._structure import ModelStructure, PrunableUnit, QuantizableLayer, positive

HIDDEN_UNITS = "hidden_units"  # the hidden units of a recurrent layer


def streaming_front_end(front_end: FrontEndConfig) -> FrontEndConfig:
    """The teacher's front-end made streamable: causal frames, no per-utterance normalisation
    (the model's own BatchNorm normalises each mel band)."""
    return dataclasses.replace(front_end, padding="causal", normalization="none")


@dataclass(frozen=True)
class RecurrentConfig:
    num_classes: int
    front_end: FrontEndConfig
    hidden: tuple[int, ...] = (128,)  # units per layer, first layer first
    dropout: float = 0.1

    family: ClassVar[str] = ""

    def __post_init__(self) -> None:
        positive(self.family, num_classes=self.num_classes)
        if not self.hidden:
            raise ConfigError(f"{self.family} needs at least one layer (hidden sizes)")
        for size in self.hidden:
            positive(self.family, hidden=size)
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"{self.family}.dropout must be in [0, 1), got {self.dropout}")
        if self.front_end.padding != "causal" or self.front_end.normalization != "none":
            raise ConfigError(
                f"{self.family}: the front-end must stream (padding causal, normalization none); "
                "build configurations with the family's teacher_config"
            )

    @property
    def gates(self) -> int:
        return GATES[self.family]

    def layer_inputs(self) -> list[int]:
        return [self.front_end.n_mels, *self.hidden[:-1]]


@dataclass(frozen=True)
class LSTMConfig(RecurrentConfig):
    family: ClassVar[str] = "lstm"


@dataclass(frozen=True)
class GRUConfig(RecurrentConfig):
    family: ClassVar[str] = "gru"


class RecurrentModel(AudioModel):
    def __init__(self, config: RecurrentConfig) -> None:
        super().__init__()
        self.config = config
        self.front_end = LogMel(config.front_end)
        self.input_norm = nn.BatchNorm1d(config.front_end.n_mels)
        layer = LAYER_TYPES[config.family]
        self.rnn = nn.ModuleList(
            layer(n_in, n_out, batch_first=True)
            for n_in, n_out in zip(config.layer_inputs(), config.hidden, strict=True)
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden[-1], config.num_classes)

    def frame_logits(self, features: torch.Tensor) -> torch.Tensor:
        """(batch, frames, classes): what the model says about each frame, from frames up to it."""
        x = self.input_norm(features).transpose(1, 2)
        for layer in self.rnn:
            x = self.dropout(layer(x)[0])
        return self.head(x)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        frames = self.frame_logits(features)
        return torch.logsumexp(frames, dim=1) - math.log(frames.shape[1])


class StreamingRecurrent(nn.Module):
    """One chunk of a stream at a time: (chunk, context, h0, c0, h1, c1, ...) -> (frame_logits,
    context_out, h0_out, c0_out, ...). ``chunk`` is (1, k * hop) samples; ``context`` the stream's
    previous ``n_fft - hop`` samples (zeros at its start). ONNX Runtime sessions hold no state, so
    the state goes in and out as tensors; the frames of a stream equal the whole recording's.

    Holds the model's own modules under their own names, so an export's nodes carry the layer names
    compression addresses (``rnn.0/LSTM``)."""

    def __init__(self, model: RecurrentModel) -> None:
        super().__init__()
        self.config = model.config
        self.front_end, self.input_norm, self.rnn, self.head = (
            model.front_end,
            model.input_norm,
            model.rnn,
            model.head,
        )

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every state input by name, with its shape (the outputs are ``<name>_out``)."""
        shapes = {"context": (1, self.config.front_end.context_samples)}
        for i, layer in enumerate(self.rnn):
            shapes[f"h{i}"] = shapes[f"c{i}"] = (1, 1, layer.hidden_size)
        return shapes

    def forward(
        self, chunk: torch.Tensor, context: torch.Tensor, *states: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        signal = torch.cat([context, chunk], dim=1)
        x = self.input_norm(self.front_end.stream(signal)).transpose(1, 2)
        new_states = []
        for i, layer in enumerate(self.rnn):
            x, h, c = layer(x, states[2 * i], states[2 * i + 1])
            new_states += [h, c]
        keep = self.config.front_end.context_samples
        return (self.head(x), signal[:, signal.shape[1] - keep :], *new_states)


# -- kernels -------------------------------------------------------------------------------------


def _recurrent_graph(op: str) -> Any:
    def graph(d: Dims, _: str, rng: np.random.Generator) -> Graph:
        t, n_in, h, g = d["frames"], d["in"], d["hidden"], GATES[op.lower()]
        make = helper.make_node
        extra = {"linear_before_reset": 1} if op == "GRU" else {}
        nodes = [
            make("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
            make(op, ["xt", "w", "r", "b"], ["y4"], name=LAYER_NODE, hidden_size=h, **extra),
            make("Squeeze", ["y4", "axis1"], ["y3"]),
            make("Transpose", ["y3"], ["y"], perm=[1, 0, 2]),
        ]
        inits = [
            const("w", weights(rng, 1, g * h, n_in)),
            const("r", weights(rng, 1, g * h, h)),
            const("b", np.zeros((1, 2 * g * h), np.float32)),
            const("axis1", np.array([1], np.int64)),
        ]
        return nodes, [value("x", [1, t, n_in])], [value("y", [1, t, h])], inits

    return graph


for _op in ("LSTM", "GRU"):
    _g = GATES[_op.lower()]
    register_kernel_kind(
        KernelKind(
            _op.lower(),
            ("frames", "in", "hidden"),
            _op.lower(),
            macs=lambda d, f, g=_g: d["frames"] * g * d["hidden"] * (d["in"] + d["hidden"]),
            # the input projections of every frame at once, then the state per step
            activation_bytes=lambda d, g=_g: 4 * d["frames"] * (d["in"] + (g + 1) * d["hidden"]),
            graph=_recurrent_graph(_op),
            params=lambda d, g=_g: g * d["hidden"] * (d["in"] + d["hidden"] + 2),
        )
    )


def _frame_norm_graph(d: Dims, _: str, rng: np.random.Generator) -> Graph:
    m = d["mels"]
    nodes = [
        helper.make_node("BatchNormalization", ["x", "s", "b", "mean", "var"], ["n"]),
        helper.make_node("Transpose", ["n"], ["y"], perm=[0, 2, 1]),
    ]
    ones, zeros = np.ones(m, np.float32), np.zeros(m, np.float32)
    inits = [const("s", ones), const("b", zeros), const("mean", zeros), const("var", ones)]
    return nodes, [value("x", [1, m, d["frames"]])], [value("y", [1, d["frames"], m])], inits


FRAME_NORM = register_kernel_kind(
    KernelKind(
        "frame_norm",
        ("mels", "frames"),
        None,
        macs=lambda d, f: 0,
        activation_bytes=lambda d: 4 * 2 * d["mels"] * d["frames"],
        graph=_frame_norm_graph,
        params=lambda d: 2 * d["mels"],
    )
)


def _frame_head_graph(d: Dims, _: str, rng: np.random.Generator) -> Graph:
    t, n_in, c = d["frames"], d["in"], d["classes"]
    make = helper.make_node
    nodes = [
        make("MatMul", ["x", "w"], ["mm"], name=LAYER_NODE),
        make("Add", ["mm", "b"], ["frames"]),
        make("ReduceLogSumExp", ["frames", "axes"], ["lse"], keepdims=0),
        make("Sub", ["lse", "log_t"], ["y"]),
    ]
    inits = [
        const("w", weights(rng, n_in, c)),
        const("b", np.zeros(c, np.float32)),
        const("axes", np.array([1], np.int64)),
        const("log_t", np.array(math.log(t), np.float32)),
    ]
    return nodes, [value("x", [1, t, n_in])], [value("y", [1, c])], inits


FRAME_HEAD = register_kernel_kind(  # per-frame logits pooled by log-mean-exp over time
    KernelKind(
        "frame_head",
        ("frames", "in", "classes"),
        "linear",
        macs=lambda d, f: d["frames"] * d["in"] * d["classes"],
        activation_bytes=lambda d: 4 * d["frames"] * (d["in"] + 2 * d["classes"]),
        graph=_frame_head_graph,
        params=lambda d: (d["in"] + 1) * d["classes"],
    )
)


# -- the families -----------------------------------------------------------------------------------


class RecurrentFamily(Family):
    """Shared by ``lstm`` and ``gru``: they differ in their cell, config class and formats."""

    size_options = (
        SizeOption(
            "hidden",
            tuple,
            (128,),
            "Recurrent hidden units per layer, comma-separated (one number per layer).",
        ),
    )
    small: ClassVar[dict[str, Any]] = {"hidden": (16, 8)}
    can_stream = True

    def teacher_config(self, *, num_classes: int, front_end: FrontEndConfig, **sizes: Any) -> RecurrentConfig:
        hidden = tuple(sizes.pop("hidden", (128,)))
        return self.config_type(num_classes, streaming_front_end(front_end), hidden, **sizes)

    def build(self, config: RecurrentConfig) -> RecurrentModel:
        return RecurrentModel(config)

    def structure(self, config: RecurrentConfig) -> ModelStructure:
        prunable, quantizable = [], []
        inputs, count = config.layer_inputs(), len(config.hidden)
        for i, hidden in enumerate(config.hidden):
            consumer = f"rnn.{i + 1}" if i + 1 < count else "head"
            prunable.append(PrunableUnit(f"rnn.{i}.hidden", HIDDEN_UNITS, hidden, (f"rnn.{i}", consumer)))
            params = config.gates * hidden * (inputs[i] + hidden)
            quantizable.append(QuantizableLayer(f"rnn.{i}", self.name, inputs[i], hidden, params))
        quantizable.append(linear_layer("head", config.hidden[-1], config.num_classes))
        return ModelStructure(tuple(prunable), tuple(quantizable), config.front_end)

    def student_config(
        self, teacher: RecurrentConfig, *, kept: Mapping[str, int], front_end: FrontEndConfig
    ) -> RecurrentConfig:
        hidden = tuple(kept.get(f"rnn.{i}.hidden", h) for i, h in enumerate(teacher.hidden))
        return dataclasses.replace(teacher, front_end=streaming_front_end(front_end), hidden=hidden)

    def _rows(self, hidden: int, units: torch.Tensor) -> torch.Tensor:
        """Rows of unit j in every gate block of a (gates * hidden, ...) weight."""
        gates = GATES[self.name]
        return torch.cat([units + g * hidden for g in range(gates)])

    def unit_scores(self, model: AudioModel, value: Elementwise) -> dict[str, torch.Tensor]:
        config, scores = model.config, {}
        gates, count = config.gates, len(config.hidden)
        for i, hidden in enumerate(config.hidden):
            p = f"rnn.{i}"
            rows = [
                value(f"{p}.{w}").reshape(gates, hidden, -1).sum((0, 2))
                for w in ("weight_ih_l0", "weight_hh_l0")
            ]
            biases = [value(f"{p}.{b}").reshape(gates, hidden).sum(0) for b in ("bias_ih_l0", "bias_hh_l0")]
            recurrent = value(f"{p}.weight_hh_l0").sum(0)  # column j: unit j's state fed back
            consumer = f"rnn.{i + 1}.weight_ih_l0" if i + 1 < count else "head.weight"
            scores[f"{p}.hidden"] = sum(rows) + sum(biases) + recurrent + value(consumer).sum(0)
        return scores

    def slice(
        self,
        teacher: RecurrentConfig,
        student: RecurrentConfig,
        keep: Mapping[str, torch.Tensor],
        state: dict,
    ) -> None:
        count = len(student.hidden)
        for i, hidden in enumerate(teacher.hidden):
            p, units = f"rnn.{i}", keep[f"rnn.{i}.hidden"]
            rows = self._rows(hidden, units)
            for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
                state[f"{p}.{name}"] = state[f"{p}.{name}"][rows]
            state[f"{p}.weight_hh_l0"] = state[f"{p}.weight_hh_l0"][:, units]
            consumer = f"rnn.{i + 1}.weight_ih_l0" if i + 1 < count else "head.weight"
            state[consumer] = state[consumer][:, units]
        bands, fine = student.front_end.n_mels, teacher.front_end.n_mels
        if bands != fine:  # fewer mel bands: the per-band norm and the first layer read them over
            to_bands = mel_interpolation(bands, fine)
            for stat in ("weight", "bias", "running_mean", "running_var"):
                state[f"input_norm.{stat}"] = to_bands @ state[f"input_norm.{stat}"]
            state["rnn.0.weight_ih_l0"] = state["rnn.0.weight_ih_l0"] @ mel_interpolation(fine, bands)

    def kernels(self, config: RecurrentConfig) -> list[LayerKernel]:
        fe = config.front_end
        frames = fe.frames
        out = [LayerKernel(front_end_kernel(fe))]
        out.append(LayerKernel(Kernel.of("frame_norm", mels=fe.n_mels, frames=frames)))
        for i, (n_in, hidden) in enumerate(zip(config.layer_inputs(), config.hidden, strict=True)):
            layer = Kernel.of(self.name, frames=frames, hidden=hidden, **{"in": n_in})
            out.append(LayerKernel(layer, f"rnn.{i}"))
        head = Kernel.of("frame_head", frames=frames, classes=config.num_classes, **{"in": config.hidden[-1]})
        out.append(LayerKernel(head, "head"))
        return out

    def streaming(self, model: RecurrentModel) -> StreamingRecurrent:
        return StreamingRecurrent(model)

    def calibration_kernels(self, teacher: RecurrentConfig) -> set[Kernel]:
        """Every hidden size pruning can leave (on the SIMD grid), each layer fed by every size of the
        one before it."""
        kernels = {k.kernel for k in self.kernels(teacher)}
        frames, previous = teacher.front_end.frames, [teacher.front_end.n_mels]
        for hidden in teacher.hidden:
            sizes = width_grid(hidden, step=max(8, hidden // 8))
            for n_in in previous:
                for size in sizes:
                    kernels.add(Kernel.of(self.name, frames=frames, **{"in": n_in}, hidden=size))
            previous = sizes
        for size in previous:
            kernels.add(Kernel.of("frame_head", frames=frames, **{"in": size}, classes=teacher.num_classes))
        return kernels


class LSTMFamily(RecurrentFamily):
    name = "lstm"
    config_type = LSTMConfig


class GRUFamily(RecurrentFamily):
    name = "gru"
    config_type = GRUConfig


LSTM_FAMILY = register_family(LSTMFamily())
GRU_FAMILY = register_family(GRUFamily())
