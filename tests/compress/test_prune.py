"""Pruning removes exactly the structures that matter least, and physically."""

from __future__ import annotations

import onnx
import pytest
import torch

from paretone.audio import WaveformSet
from paretone.compress import FrontEnd, Prune, Recipe, apply
from paretone.models import ASTConfig, CNNConfig, build_model, count_complexity, export_onnx
from paretone.runtime import run_logits

AST_CONFIG = ASTConfig.uniform(num_classes=10, dim=32, depth=2, heads=4, dropout=0.0)
CNN_CONFIG = CNNConfig.uniform(num_classes=10, channels=(8, 8, 16, 16))


def _waves(n: int = 6) -> torch.Tensor:
    return torch.randn(n, 8000, generator=torch.Generator().manual_seed(0)) * 0.1


def _data() -> WaveformSet:
    return WaveformSet(_waves(32), torch.arange(32) % 10)


def _dead_ast() -> torch.nn.Module:
    """An AST in which some heads, channels and FFN units contribute nothing at all."""
    torch.manual_seed(0)
    model = build_model(AST_CONFIG).eval()
    with torch.no_grad():
        attn, ffn = model.blocks[0].attn, model.blocks[0].ffn
        for h in (1, 3):  # whole heads 1 and 3: their value rows and output columns
            rows = slice(h * 8, (h + 1) * 8)
            for proj in (attn.q, attn.k, attn.v):
                proj.weight[rows] = 0
                proj.bias[rows] = 0
            attn.o.weight[:, rows] = 0
        block1 = model.blocks[1].attn
        for h in range(4):  # query/key channel 5 of every head, value channel 2 of every head
            for proj in (block1.q, block1.k):
                proj.weight[h * 8 + 5] = 0
                proj.bias[h * 8 + 5] = 0
            block1.v.weight[h * 8 + 2] = 0
            block1.v.bias[h * 8 + 2] = 0
            block1.o.weight[:, h * 8 + 2] = 0
        dead = torch.arange(0, 64, 2)  # every other FFN hidden unit
        ffn.fc1.weight[dead] = 0
        ffn.fc1.bias[dead] = 0
        ffn.fc2.weight[:, dead] = 0
    return model


def _dead_ast_recipe(criterion: str) -> Recipe:
    channels = {
        "blocks.1.attn.qk_channels": 7 / 8,
        "blocks.1.attn.v_channels": 7 / 8,
        "blocks.0.ffn.hidden": 0.5,
    }
    return Recipe.of(Prune({"blocks.0.attn.heads": 2}, channels, importance=criterion))


@pytest.mark.parametrize("criterion", ["magnitude", "taylor"])
def test_ast_pruning_removes_exactly_the_dead_structures(criterion):
    teacher = _dead_ast()
    student = apply(_dead_ast_recipe(criterion), teacher, data=_data()).eval()
    blocks = student.config.blocks
    assert (blocks[0].num_heads, blocks[0].ffn_dim) == (2, 32)
    assert (blocks[1].qk_head_dim, blocks[1].v_head_dim) == (7, 7)
    assert blocks[1].attn_scale == AST_CONFIG.blocks[1].attn_scale  # softmax scale of the teacher
    with torch.no_grad():
        assert torch.allclose(student(_waves()), teacher(_waves()), atol=1e-5)


def test_pruning_live_structures_changes_outputs_and_shrinks_everything(tmp_path):
    torch.manual_seed(0)
    teacher = build_model(AST_CONFIG).eval()
    recipe = Recipe.of(
        Prune(
            {f"blocks.{i}.attn.heads": 2 for i in range(2)}, {f"blocks.{i}.ffn.hidden": 0.5 for i in range(2)}
        )
    )
    student = apply(recipe, teacher).eval()
    with torch.no_grad():
        assert not torch.allclose(student(_waves()), teacher(_waves()), atol=1e-3)
    big, small = count_complexity(teacher), count_complexity(student)
    # per block, 2 of 4 heads (8 channels each) and 32 of 64 FFN units go: q/k/v rows + biases,
    # o columns, fc1 rows + biases, fc2 columns; and their MACs over 50 tokens
    removed_params = 3 * (16 * 32 + 16) + 32 * 16 + (32 * 32 + 32) + 32 * 32
    removed_macs = 50 * (3 * 32 * 16 + 16 * 32 + 2 * 2 * 50 * 8 + 2 * 32 * 32)
    assert small.params == big.params - 2 * removed_params
    assert small.dense_macs == big.dense_macs - 2 * removed_macs
    big_file = export_onnx(teacher, tmp_path / "t.onnx").stat().st_size
    small_file = export_onnx(student, tmp_path / "s.onnx").stat().st_size
    # the file shrinks by the removed float32 weights (the front-end's filterbank stays)
    assert big_file - small_file == pytest.approx(2 * removed_params * 4, rel=0.03)


def test_keep_everything_is_the_identity():
    torch.manual_seed(0)
    teacher = build_model(CNN_CONFIG).eval()
    student = apply(Recipe(), teacher).eval()
    with torch.no_grad():
        assert torch.equal(student(_waves()), teacher(_waves()))


@pytest.mark.parametrize("criterion", ["magnitude", "taylor"])
def test_cnn_filter_pruning_keeps_batchnorm_and_next_layer_consistent(criterion):
    torch.manual_seed(0)
    teacher = build_model(CNN_CONFIG).eval()
    with torch.no_grad():
        for i, dead in ((0, [1, 4, 6]), (3, list(range(8)))):
            block = teacher.blocks[i]
            block.conv.weight[dead] = 0
            block.bn.bias[dead] = 0
            block.bn.running_mean[dead] = 0  # so the dead filters output exactly zero
    recipe = Recipe.of(
        Prune(channels={"blocks.0.filters": 5 / 8, "blocks.3.filters": 0.5}, importance=criterion)
    )
    student = apply(recipe, teacher, data=_data()).eval()
    assert [b.out_channels for b in student.config.blocks] == [5, 8, 16, 8]
    assert student.blocks[1].conv.weight.shape == (8, 5, 3, 3)
    assert student.head.weight.shape == (10, 8)
    with torch.no_grad():
        assert torch.allclose(student(_waves()), teacher(_waves()), atol=1e-5)


def test_taylor_scores_need_data():
    recipe = Recipe.of(Prune(channels={"blocks.0.filters": 0.5}, importance="taylor"))
    with pytest.raises(ValueError, match="taylor criterion needs"):
        apply(recipe, build_model(CNN_CONFIG))


def test_dft_front_end_is_the_teacher_features_and_a_coarser_hop_resamples_positions(tmp_path):
    teacher = build_model(AST_CONFIG).eval()
    same = apply(Recipe.of(FrontEnd("dft")), teacher)
    waves = _waves()
    # the DFT-as-conv front-end computes the teacher's log-mels: same logits, no retraining
    assert torch.allclose(teacher.features(waves), same.features(waves), atol=1e-4)
    assert torch.allclose(teacher(waves), same(waves), atol=1e-4)
    assert not any(k.startswith("front_end.") for k in same.state_dict())  # constants, not weights

    coarse = apply(Recipe.of(FrontEnd("dft", 160)), teacher)
    assert coarse.config.front_end.hop_length == 160 and coarse.config.num_patches == 25
    positions = coarse.pos_embed.detach()[0]
    assert torch.equal(positions[0], teacher.pos_embed.detach()[0, 0])  # ends kept, middle interpolated
    assert torch.equal(positions[-1], teacher.pos_embed.detach()[0, -1])
    onnx_path = export_onnx(coarse, tmp_path / "coarse.onnx")
    assert torch.allclose(torch.from_numpy(run_logits(onnx_path, waves.numpy())), coarse(waves), atol=1e-3)
    ops = {n.op_type for n in onnx.load(str(onnx_path)).graph.node}
    assert "STFT" not in ops and "Conv" in ops
    stored = [i for i in onnx.load(str(onnx_path)).graph.initializer if len(i.dims) == 3 and i.dims[0] == 258]
    assert not stored  # the 258 x 256 DFT kernel is computed in the graph (folded at load), not stored


def test_operator_norm_scores_filters_by_their_share_of_the_dominant_operator():
    from paretone.compress._importance import operator_norm_scores

    torch.manual_seed(0)
    mean, direction = torch.randn(9), torch.nn.functional.normalize(torch.randn(9), dim=0)
    amounts = torch.tensor([0.0, 0.0, 3.0, -1.0, 0.5])
    bank = (mean + amounts[:, None] * direction).reshape(5, 1, 1, 3, 3)  # one input channel
    scores = operator_norm_scores(bank)
    centred = amounts - amounts.mean()
    assert torch.allclose(scores, centred**2, atol=1e-4)  # the squared projection, filter by filter
    assert scores.argmax() == 2


def test_operator_norm_prunes_whole_quaternion_filters_it_ranks_lowest():
    from paretone.compress._importance import operator_norm_scores
    from paretone.models import FAMILIES, family_of

    family = FAMILIES["qcnn"]
    torch.manual_seed(0)
    teacher = build_model(
        family.teacher_config(num_classes=4, front_end=AST_CONFIG.front_end, channels=(16, 8))
    ).eval()
    ranked = operator_norm_scores(family_of(teacher.config).filter_banks(teacher)["blocks.0.filters"])
    keep = ranked.topk(2).indices.sort().values
    student = apply(Recipe.of(Prune(channels={"blocks.0.filters": 0.5}, importance="operator_norm")), teacher)
    assert student.config.blocks[0].filters == 2 and student.blocks[0].bn.num_features == 8
    assert torch.equal(
        student.blocks[0].conv.r, teacher.blocks[0].conv.r[keep]
    )  # whole filters, every component
    assert torch.equal(student.blocks[0].conv.k, teacher.blocks[0].conv.k[keep])
    assert torch.equal(
        student.blocks[1].conv.i, teacher.blocks[1].conv.i[:, keep]
    )  # and the next layer's inputs
    real = torch.cat([c * 4 + keep for c in range(4)])
    assert torch.equal(student.blocks[0].bn.weight, teacher.blocks[0].bn.weight[real])


def test_operator_norm_is_refused_for_units_that_are_not_filters():
    from paretone.errors import ConfigError

    recipe = Recipe.of(Prune(channels={"blocks.0.ffn.hidden": 0.5}, importance="operator_norm"))
    with pytest.raises(ConfigError, match="operator_norm scores convolution filters"):
        recipe.check(build_model(AST_CONFIG).structure())
