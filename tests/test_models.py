from __future__ import annotations

import math

import pytest
import torch

from paretone.audio import FrontEndConfig
from paretone.errors import ConfigError
from paretone.models import (
    ATTENTION_HEADS,
    CONV_FILTERS,
    FFN_CHANNELS,
    QK_CHANNELS,
    V_CHANNELS,
    ASTBlockConfig,
    ASTConfig,
    CNNConfig,
    build_model,
    config_from_dict,
    config_to_dict,
    count_complexity,
)

SMALL_AST = ASTConfig.uniform(num_classes=10, dim=64, depth=2, heads=4)
SMALL_CNN = CNNConfig.uniform(num_classes=10, channels=(8, 8, 16, 16))


@pytest.mark.parametrize("config", [SMALL_AST, SMALL_CNN])
def test_models_take_raw_waveforms(config):
    model = build_model(config).eval()
    waves = torch.randn(3, config.front_end.clip_samples) * 0.1
    logits = model(waves)
    assert logits.shape == (3, 10)
    assert torch.allclose(logits, model.classify(model.features(waves)))
    assert model.features(waves).shape == (3, 64, config.front_end.frames)


@pytest.mark.parametrize("config", [SMALL_AST, SMALL_CNN])
def test_config_round_trips_through_json_dict(config):
    assert config_from_dict(config_to_dict(config)) == config


def test_ast_structure_names_real_modules_with_their_sizes():
    model = build_model(SMALL_AST)
    structure = model.structure()
    modules = dict(model.named_modules())
    kinds = [u.kind for u in structure.prunable[:4]]
    assert kinds == [ATTENTION_HEADS, QK_CHANNELS, V_CHANNELS, FFN_CHANNELS]
    assert structure.unit("blocks.1.attn.heads").size == 4
    assert structure.unit("blocks.0.attn.qk_channels").size == 16
    assert structure.unit("blocks.0.ffn.hidden").size == 128
    assert structure.unit("blocks.0.attn.qk_channels").modules == ("blocks.0.attn.q", "blocks.0.attn.k")
    for unit in structure.prunable:
        assert all(name in modules for name in unit.modules)
    names = [layer.name for layer in structure.quantizable]
    assert names[:5] == [
        "patch_embed",
        "blocks.0.attn.q",
        "blocks.0.attn.k",
        "blocks.0.attn.v",
        "blocks.0.attn.o",
    ]
    for layer in structure.quantizable:
        assert modules[layer.name].weight.numel() == layer.params


def test_cnn_structure_links_each_filter_group_to_its_consumer():
    structure = build_model(SMALL_CNN).structure()
    assert [u.kind for u in structure.prunable] == [CONV_FILTERS] * 4
    assert structure.prunable[0].modules == ("blocks.0.conv", "blocks.0.bn", "blocks.1.conv")
    assert structure.prunable[-1].modules[-1] == "head"
    assert [u.size for u in structure.prunable] == [8, 8, 16, 16]


def test_heterogeneous_blocks_model_a_pruned_student():
    teacher = SMALL_AST.blocks[0]
    pruned = ASTBlockConfig(
        num_heads=2, qk_head_dim=8, v_head_dim=12, ffn_dim=40, attn_scale=teacher.attn_scale
    )
    student_config = ASTConfig(10, SMALL_AST.front_end, 64, (pruned, teacher))
    student = build_model(student_config)
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
        lambda: CNNConfig.uniform(num_classes=10, channels=()),
        lambda: FrontEndConfig(n_mels=0),
        lambda: config_from_dict({"family": "rnn", "front_end": {}}),
    ],
)
def test_invalid_configs_are_refused(bad):
    with pytest.raises(ConfigError):
        bad()
