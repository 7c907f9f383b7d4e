"""Low-rank factorisation: exact where the weight has that rank, composes with pruning and quantization."""

from __future__ import annotations

import onnx
import pytest
import torch

from paretone.audio import WaveformSet
from paretone.compress import (
    Factorize,
    FactorizedLinear,
    Prune,
    Quantize,
    Recipe,
    apply,
    export_compressed,
    factorize_linear,
    load_student,
    save_student,
)
from paretone.errors import ConfigError
from paretone.models import ASTConfig, build_model
from paretone.runtime import run_logits

CONFIG = ASTConfig.uniform(num_classes=4, dim=64, depth=1, heads=2, dropout=0.0)


def _waves(n: int = 8) -> torch.Tensor:
    return torch.randn(n, 8000, generator=torch.Generator().manual_seed(0)) * 0.1


def test_a_weight_of_that_rank_is_factorised_exactly_and_activation_svd_weights_the_inputs():
    torch.manual_seed(0)
    linear = torch.nn.Linear(48, 40)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(40, 8) @ torch.randn(8, 48))  # rank 8
    x = torch.randn(16, 48)
    exact = factorize_linear(linear, 8)
    assert isinstance(exact, FactorizedLinear) and exact.u.weight.shape == (8, 48)
    assert torch.allclose(exact(x), linear(x), atol=1e-4)
    # full-rank weight, inputs of very uneven scale: weighting the error by them loses less output
    linear = torch.nn.Linear(48, 40)
    scale = torch.logspace(-2, 1, 48)
    inputs = torch.randn(256, 48) * scale
    plain = factorize_linear(linear, 8)
    weighted = factorize_linear(linear, 8, scale=scale)
    error = lambda f: (f(inputs) - linear(inputs)).pow(2).mean().item()  # noqa: E731
    assert error(weighted) < 0.5 * error(plain)


@pytest.mark.parametrize(
    ("ranks", "needle"),
    [
        ({"blocks.0.ffn.fc1": 65}, "exceeds min"),
        ({"blocks.0.ffn.fc1": 60}, "keeps as many parameters"),
        ({"blocks.0.attn.heads": 4}, "not a linear layer"),
        ({"patch_embed": 4}, "not a linear layer"),
        ({"blocks.0.ffn.fc1": 0}, "a whole rank >= 1 or a fraction"),
        ({"blocks.0.ffn.fc1": 1.5}, "a whole rank >= 1 or a fraction"),
    ],
)
def test_ranks_that_save_nothing_or_do_not_exist_are_refused(ranks, needle):
    with pytest.raises(ConfigError, match=needle):
        Recipe.of(Factorize(ranks)).check(build_model(CONFIG).structure())


def test_the_pruned_layer_is_factorised_and_each_factor_quantized_in_the_layers_format(tmp_path):
    torch.manual_seed(0)
    teacher = build_model(CONFIG).eval()
    recipe = Recipe.of(
        Prune(channels={"blocks.0.ffn.hidden": 0.5}),
        Factorize({"blocks.0.ffn.fc1": 0.25, "blocks.0.attn.q": 16}),
        Quantize({"blocks.0.ffn.fc1": "w4", "blocks.0.attn.q": "w8a8"}),
    )
    data = WaveformSet(_waves(32), torch.arange(32) % 4)
    student = apply(recipe, teacher, data=data).eval()
    fc1 = student.blocks[0].ffn.fc1
    assert isinstance(fc1, FactorizedLinear) and (fc1.in_features, fc1.rank, fc1.out_features) == (64, 16, 64)
    path = tmp_path / "s.onnx"
    report = {d.layer: d for d in export_compressed(student, recipe, path, calibration=data.waveforms)}
    assert report["blocks.0.ffn.fc1.u"].onnx_node == "blocks.0.ffn.fc1.u/MatMul_Q4"
    assert report["blocks.0.ffn.fc1.v"].onnx_node == "blocks.0.ffn.fc1.v/MatMul_Q4"
    assert report["blocks.0.attn.q.u"].format.name == report["blocks.0.attn.q.v"].format.name == "w8a8"
    ops = {n.name: n.op_type for n in onnx.load(str(path)).graph.node}
    assert ops["blocks.0.ffn.fc1.u/MatMul_Q4"] == "MatMulNBits"
    with torch.no_grad():
        expected = student(data.waveforms[:8])
    got = torch.from_numpy(run_logits(path, data.waveforms[:8].numpy()))
    assert (got.argmax(1) == expected.argmax(1)).float().mean() >= 0.75
    kernels = [k for k in recipe.kernels(teacher.config) if k.kind in ("matmul", "linear", "linear_gelu")]
    shapes = [(k.kind, k.format, k.dims["in"], k.dims["out"]) for k in kernels]
    assert ("matmul", "w4", 64, 16) in shapes and ("linear_gelu", "w4", 16, 64) in shapes  # fc1's pair

    save_student(tmp_path / "student", student, recipe, labels=tuple("abcd"))
    loaded, again = load_student(tmp_path / "student")
    assert again == recipe
    with torch.no_grad():
        assert torch.equal(loaded.model(data.waveforms[:4]), student(data.waveforms[:4]))


def test_the_space_offers_ranks_only_when_asked_and_describes_them():
    from paretone.spaces import SearchSpace, SpaceConfig

    structure = build_model(CONFIG).structure()
    assert "factorize" not in SearchSpace.build(structure).params  # off by default: it widens calibration
    space = SearchSpace.build(structure, SpaceConfig.from_dict({"ranks": [0.125, 0.5]}))
    ranks = {p.name: p.choices for p in space.params["factorize"]}
    assert ranks["rank:blocks.0.ffn.fc1"] == (1.0, 0.5, 0.25, 0.125)  # 64 x 128: rank 32 saves a quarter
    assert ranks["rank:blocks.0.attn.q"] == (1.0, 0.25, 0.125)  # 64 x 64: rank 32 would save nothing
    words = Recipe.of(Factorize({"blocks.0.ffn.fc1": 0.25})).describe(structure)
    assert "Low-rank factorised (svd init): blocks.0.ffn.fc1 rank 16 of 64." in words


def test_every_candidate_of_a_space_with_ranks_is_predictable_after_calibration(tmp_path):
    """The calibration sweep covers the factors of pruned widths between its grid points (a
    one-head layer of 12 channels factorised to rank 8): no sampled candidate is left unpredictable."""
    import optuna

    from paretone.hw_models import LatencyModel
    from paretone.spaces import SearchSpace, SpaceConfig
    from tests.helpers import synthetic_profile

    teacher = build_model(ASTConfig.uniform(num_classes=10, dim=48, depth=2, heads=2, mlp_ratio=2)).eval()
    space = SearchSpace.build(
        teacher.structure(), SpaceConfig.from_dict({"ranks": [0.125, 0.5]}), teacher=teacher.config
    )
    profile = synthetic_profile(teacher, tmp_path, "ranks", ns_per_mac=1.0, operators=dict(space.params))
    latency = LatencyModel(profile)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    factorised = 0
    for _ in range(150):
        recipe = space.recipe(study.ask(space.distributions()).params)
        try:
            kernels = recipe.kernels(teacher.config)
        except ConfigError:
            continue  # a rank the pruned layer cannot take: told as infeasible, never predicted
        prediction = latency.predict(kernels)
        assert prediction.complete, prediction.uncovered
        factorised += any(k.kind == "matmul" for k in kernels)
    assert factorised > 20
