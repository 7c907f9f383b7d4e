"""What is particular to the ast family: its structure, heterogeneous blocks, its MAC count."""

from __future__ import annotations

import math

import pytest
import torch

from paretone.audio import FrontEndConfig
from paretone.errors import ConfigError
from paretone.models import (
    ATTENTION_HEADS,
    FFN_CHANNELS,
    QK_CHANNELS,
    V_CHANNELS,
    ASTBlockConfig,
    ASTConfig,
    build_model,
    count_complexity,
)

SMALL_AST = ASTConfig.uniform(num_classes=10, dim=64, depth=2, heads=4)


def test_ast_structure_names_its_heads_and_channels():
    structure = build_model(SMALL_AST).structure()
    assert [u.kind for u in structure.prunable[:4]] == [
        ATTENTION_HEADS,
        QK_CHANNELS,
        V_CHANNELS,
        FFN_CHANNELS,
    ]
    assert structure.unit("blocks.1.attn.heads").size == 4
    assert structure.unit("blocks.0.attn.qk_channels").size == 16
    assert structure.unit("blocks.0.ffn.hidden").size == 128
    assert structure.unit("blocks.0.attn.qk_channels").modules == ("blocks.0.attn.q", "blocks.0.attn.k")
    names = [layer.name for layer in structure.quantizable]
    assert names[:5] == [
        "patch_embed",
        "blocks.0.attn.q",
        "blocks.0.attn.k",
        "blocks.0.attn.v",
        "blocks.0.attn.o",
    ]
    assert "head" not in names  # the classifier stays float


def test_heterogeneous_blocks_model_a_pruned_student():
    teacher = SMALL_AST.blocks[0]
    pruned = ASTBlockConfig(
        num_heads=2, qk_head_dim=8, v_head_dim=12, ffn_dim=40, attn_scale=teacher.attn_scale
    )
    student = build_model(ASTConfig(10, SMALL_AST.front_end, 64, (pruned, teacher)))
    attn = student.blocks[0].attn
    assert attn.q.weight.shape == (16, 64) and attn.v.weight.shape == (24, 64)
    assert attn.o.weight.shape == (64, 24) and attn.scale == pytest.approx(1 / math.sqrt(16))
    assert student(torch.zeros(2, 8000)).shape == (2, 10)
    smaller, full = count_complexity(student), count_complexity(build_model(SMALL_AST))
    assert smaller.params < full.params and smaller.macs < full.macs


def test_complexity_counts_attention_matmuls_and_front_end():
    config = ASTConfig.uniform(num_classes=10, dim=64, depth=1, heads=4)
    c = count_complexity(build_model(config))
    tokens, fe = config.num_patches, config.front_end
    expected = (
        fe.frames * fe.n_freqs * fe.n_mels  # mel filterbank
        + tokens * config.dim * config.patch_mels * config.patch_frames  # patch embedding
        + 4 * tokens * 64 * 64  # q, k, v, o
        + 2 * tokens * tokens * 64  # scores and context
        + 2 * tokens * 64 * 128  # feed-forward
        + 64 * 10  # head
    )
    assert c.dense_macs == expected
    assert c.params == sum(p.numel() for p in build_model(config).parameters())


@pytest.mark.parametrize(
    "bad",
    [
        lambda: ASTConfig.uniform(num_classes=10, dim=64, heads=3),
        lambda: ASTConfig.uniform(num_classes=0),
        lambda: ASTBlockConfig(0, 8, 8, 8, 0.1),
        lambda: FrontEndConfig(n_mels=0),
        lambda: ASTConfig.uniform(num_classes=10, front_end=FrontEndConfig(n_mels=32)),  # patch > spectrogram
    ],
)
def test_invalid_configs_are_refused(bad):
    with pytest.raises(ConfigError):
        bad()
