"""Structured pruning that physically removes parameters.

Each prunable unit is scored per structure (a head, a channel of every head, an FFN hidden unit, a
conv filter) by summing an element-wise quantity over every weight the structure owns:
- ``magnitude``: squared weights, i.e. the structure's squared L2 norm across all its matrices;
- ``taylor``: (sum of weight x gradient)^2 per batch, summed over batches: the first-order estimate
  of the loss change when the structure is removed (Molchanov et al., 2019).
The best-scoring structures are kept and the weights sliced into a smaller model of the same class,
so parameters, MACs and the exported ONNX file all shrink. Attention keeps its query/key channels
paired and its value/output channels paired; a CNN filter's BatchNorm entry and the next layer's
input channel go with it.

Hand-written rather than torch-pruning: our two model families have explicit, named structure, the
per-head channel layout needs custom handling in any library, and the slicing is a few dozen lines
that a reader can verify.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from paretone.audio import WaveformSet
from paretone.compress._recipe import Recipe
from paretone.models import (
    AST,
    CNN,
    ASTBlockConfig,
    ASTConfig,
    AudioModel,
    CNNBlockConfig,
    CNNConfig,
    ModelConfig,
    build_model,
)

Elementwise = Callable[[str], torch.Tensor]  # state_dict key -> tensor of the parameter's shape


def _heads_rows(t: torch.Tensor, heads: int) -> torch.Tensor:
    """(heads * d, ...) -> (heads, d): sums over everything but the output row."""
    return t.reshape(heads, t.shape[0] // heads, -1).sum(-1)


def _heads_cols(t: torch.Tensor, heads: int) -> torch.Tensor:
    """(out, heads * d) -> (heads, d): sums over the output rows."""
    return t.reshape(t.shape[0], heads, -1).sum(0)


def _ast_scores(model: AST, value: Elementwise) -> dict[str, torch.Tensor]:
    scores = {}
    for i, cfg in enumerate(model.config.blocks):
        a, f, h = f"blocks.{i}.attn", f"blocks.{i}.ffn", cfg.num_heads
        qk = sum(_heads_rows(value(f"{a}.{m}.{p}"), h) for m in "qk" for p in ("weight", "bias"))
        v = _heads_rows(value(f"{a}.v.weight"), h) + _heads_rows(value(f"{a}.v.bias"), h)
        v = v + _heads_cols(value(f"{a}.o.weight"), h)
        scores[f"{a}.qk_channels"], scores[f"{a}.v_channels"] = qk, v
        scores[f"{a}.heads"] = qk.sum(1) + v.sum(1)
        scores[f"{f}.hidden"] = (
            value(f"{f}.fc1.weight").sum(1) + value(f"{f}.fc1.bias") + value(f"{f}.fc2.weight").sum(0)
        )
    return scores


def _cnn_scores(model: CNN, value: Elementwise) -> dict[str, torch.Tensor]:
    scores, count = {}, len(model.blocks)
    for i in range(count):
        b = f"blocks.{i}"
        own = value(f"{b}.conv.weight").sum((1, 2, 3)) + value(f"{b}.bn.weight") + value(f"{b}.bn.bias")
        consumer = (
            value(f"blocks.{i + 1}.conv.weight").sum((0, 2, 3))
            if i + 1 < count
            else value("head.weight").sum(0)
        )
        scores[f"{b}.filters"] = own + consumer
    return scores


def _scores(model: AudioModel, value: Elementwise) -> dict[str, torch.Tensor]:
    return _ast_scores(model, value) if isinstance(model, AST) else _cnn_scores(model, value)


def importance_scores(
    model: AudioModel,
    criterion: str,
    data: WaveformSet | None = None,
    *,
    batches: int = 8,
    batch_size: int = 32,
) -> dict[str, torch.Tensor]:
    """Per-structure importance of every prunable unit: (heads,) (heads, d) or (channels,) tensors."""
    params = dict(model.named_parameters())
    if criterion == "magnitude":
        with torch.no_grad():
            return _scores(model, lambda key: params[key].detach() ** 2)
    if criterion != "taylor":
        raise ValueError(f"unknown importance criterion {criterion!r}")
    if data is None or len(data) == 0:
        raise ValueError("the taylor criterion needs a few batches of training data")
    was_training = model.training
    model.eval()  # no dropout, BatchNorm statistics untouched
    total: dict[str, torch.Tensor] = {}
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(len(data), generator=generator)[: batches * batch_size]
    for batch in order.split(batch_size):
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(data.waveforms[batch]), data.targets[batch]).backward()
        with torch.no_grad():
            contribution = _scores(model, lambda key: params[key] * params[key].grad)
        for name, score in contribution.items():
            total[name] = total.get(name, 0) + score**2
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return total


def _top(scores: torch.Tensor, keep: int) -> torch.Tensor:
    """Indices of the ``keep`` best scores, in their original order."""
    return torch.topk(scores, keep).indices.sort().values


def student_config(teacher: ModelConfig, recipe: Recipe) -> ModelConfig:
    """The architecture ``recipe`` leaves of ``teacher`` (no weights needed)."""
    if isinstance(teacher, ASTConfig):
        blocks = []
        for i, cfg in enumerate(teacher.blocks):
            a = f"blocks.{i}.attn"
            blocks.append(
                ASTBlockConfig(
                    num_heads=recipe.kept(f"{a}.heads", cfg.num_heads),
                    qk_head_dim=recipe.kept(f"{a}.qk_channels", cfg.qk_head_dim),
                    v_head_dim=recipe.kept(f"{a}.v_channels", cfg.v_head_dim),
                    ffn_dim=recipe.kept(f"blocks.{i}.ffn.hidden", cfg.ffn_dim),
                    attn_scale=cfg.attn_scale,  # keep the teacher's softmax temperature
                )
            )
        return ASTConfig(
            teacher.num_classes,
            recipe.front_end.apply(teacher.front_end),
            teacher.dim,
            tuple(blocks),
            teacher.patch_mels,
            teacher.patch_frames,
            teacher.dropout,
        )
    blocks = tuple(
        CNNBlockConfig(recipe.kept(f"blocks.{i}.filters", b.out_channels), b.pool)
        for i, b in enumerate(teacher.blocks)
    )
    return CNNConfig(teacher.num_classes, recipe.front_end.apply(teacher.front_end), blocks, teacher.dropout)


def prune(teacher: AudioModel, recipe: Recipe, scores: dict[str, torch.Tensor]) -> AudioModel:
    """A new, smaller model holding the teacher's weights for the structures ``recipe`` keeps."""
    config = student_config(teacher.config, recipe)
    state = {k: v.detach().clone() for k, v in teacher.state_dict().items()}
    if isinstance(teacher, AST):
        _slice_ast(teacher.config, config, scores, state)
    else:
        _slice_cnn(config, scores, state)
    student = build_model(config)
    # The front-end holds constants only: the student's own, which may differ from the teacher's.
    state = {k: v for k, v in state.items() if not k.startswith("front_end.")}
    state |= {k: v for k, v in student.state_dict().items() if k.startswith("front_end.")}
    student.load_state_dict(state, strict=True)
    return student.train(teacher.training)


def _slice_ast(teacher: ASTConfig, student: ASTConfig, scores: dict, state: dict) -> None:
    if student.num_patches != teacher.num_patches:  # a coarser hop: resample positions in time
        rows = teacher.front_end.n_mels // teacher.patch_mels  # tokens are (mel row, time) row-major
        grid = state["pos_embed"].transpose(1, 2).reshape(1, teacher.dim, rows, -1)
        columns = student.num_patches // rows
        grid = F.interpolate(grid, size=(rows, columns), mode="bilinear", align_corners=True)
        state["pos_embed"] = grid.flatten(2).transpose(1, 2).contiguous()
    for i, (old, new) in enumerate(zip(teacher.blocks, student.blocks, strict=True)):
        a, f = f"blocks.{i}.attn", f"blocks.{i}.ffn"
        heads = _top(scores[f"{a}.heads"], new.num_heads)
        qk_rows = torch.cat(
            [
                h * old.qk_head_dim + _top(scores[f"{a}.qk_channels"][h], new.qk_head_dim)
                for h in heads.tolist()
            ]
        )
        v_rows = torch.cat(
            [h * old.v_head_dim + _top(scores[f"{a}.v_channels"][h], new.v_head_dim) for h in heads.tolist()]
        )
        for key, rows in ((f"{a}.q", qk_rows), (f"{a}.k", qk_rows), (f"{a}.v", v_rows)):
            state[f"{key}.weight"], state[f"{key}.bias"] = (
                state[f"{key}.weight"][rows],
                state[f"{key}.bias"][rows],
            )
        state[f"{a}.o.weight"] = state[f"{a}.o.weight"][:, v_rows]
        hidden = _top(scores[f"{f}.hidden"], new.ffn_dim)
        state[f"{f}.fc1.weight"], state[f"{f}.fc1.bias"] = (
            state[f"{f}.fc1.weight"][hidden],
            state[f"{f}.fc1.bias"][hidden],
        )
        state[f"{f}.fc2.weight"] = state[f"{f}.fc2.weight"][:, hidden]


def _slice_cnn(student: CNNConfig, scores: dict, state: dict) -> None:
    for i, block in enumerate(student.blocks):
        b, keep = f"blocks.{i}", _top(scores[f"blocks.{i}.filters"], block.out_channels)
        state[f"{b}.conv.weight"] = state[f"{b}.conv.weight"][keep]
        for stat in ("weight", "bias", "running_mean", "running_var"):
            state[f"{b}.bn.{stat}"] = state[f"{b}.bn.{stat}"][keep]
        consumer = f"blocks.{i + 1}.conv.weight" if i + 1 < len(student.blocks) else "head.weight"
        state[consumer] = state[consumer][:, keep]
