"""The search space offers exactly what the exporter ships, narrows as configured, round-trips."""

import json
import math

import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paretone.compress import RUNTIME_FORMATS
from paretone.errors import ConfigError
from paretone.hw_models import recipe_kernels
from paretone.models import ASTConfig, CNNConfig, build_model
from paretone.search import Budget
from paretone.spaces import SearchSpace, SpaceConfig

AST = ASTConfig.uniform(num_classes=10, dim=32, depth=2, heads=2, mlp_ratio=2)
CNN = CNNConfig.uniform(num_classes=10, channels=(8, 8, 16, 16))


def test_space_covers_every_unit_and_layer_with_runtime_formats():
    structure = build_model(AST).structure()
    space = SearchSpace.build(structure)
    assert set(space.heads) == {u.name for u in structure.prunable if u.kind == "attention_heads"}
    assert set(space.keep) == {u.name for u in structure.prunable if u.kind != "attention_heads"}
    linear = tuple(f.name for f in RUNTIME_FORMATS if f.layer_kind == "linear")
    assert space.formats["blocks.0.attn.q"] == linear
    assert space.formats["patch_embed"] == ("float", "w8a8", "w8")
    dists = space.distributions()
    assert isinstance(dists["heads:blocks.0.attn.heads"], optuna.distributions.IntDistribution)
    assert dists["keep:blocks.1.ffn.hidden"].step == 0.125


@pytest.mark.parametrize("config", [AST, CNN], ids=["ast", "cnn"])
def test_every_sampled_point_is_a_recipe_the_teacher_accepts(config):
    teacher = build_model(config)
    space = SearchSpace.build(teacher.structure())
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask(space.distributions())
        recipe = space.recipe(trial.params)
        recipe.check(teacher.structure())
        assert recipe_kernels(config, recipe)  # every point has a kernel list (predictable cost)
        study.tell(trial, 0.0)


def test_config_freezes_and_restricts():
    structure = build_model(AST).structure()
    config = SpaceConfig(
        freeze=("blocks.0.*",),
        formats={"*.fc2": ("float",), "*": ("float", "w8a8")},
        min_keep=0.5,
        epochs=(1, 3),
    )
    space = SearchSpace.build(structure, config)
    assert not any(name.startswith("blocks.0.") for name in [*space.heads, *space.keep, *space.formats])
    assert "blocks.1.ffn.fc2" not in space.formats  # float only: nothing to search
    assert space.formats["blocks.1.attn.q"] == ("float", "w8a8")
    assert all(low == 0.5 for low, _, _ in space.keep.values())
    params = {**space.uniform(1.0, "w8a8"), "epochs": 3}
    assert space.epochs_for(params, default=2) == 3
    with pytest.raises(ConfigError, match="cannot run w4"):
        SearchSpace.build(structure, SpaceConfig(formats={"patch_embed": ("w4",)}))


def test_uniform_baseline_prunes_and_quantizes_everything_alike():
    space = SearchSpace.build(build_model(AST).structure())
    recipe = space.recipe(space.uniform(0.5, "w8a8"))
    assert set(recipe.channels.values()) == {0.5}
    assert set(recipe.heads.values()) == {1}
    assert {(p.weight_bits, p.activation_bits) for p in recipe.precision.values()} == {(8, 8)}


def test_space_round_trips_through_json():
    space = SearchSpace.build(build_model(CNN).structure(), SpaceConfig(epochs=(2, 4)))
    again = SearchSpace.from_dict(json.loads(json.dumps(space.to_dict())))
    assert again == space and again.distributions() == space.distributions()
    with pytest.raises(ConfigError, match=r"paretone\.space/1"):
        SearchSpace.from_dict({"format": "nope"})


def test_recipe_refuses_foreign_parameters():
    space = SearchSpace.build(build_model(AST).structure())
    params = {**space.uniform(1.0, "float"), "heads:blocks.9.attn.heads": 1}
    with pytest.raises(ConfigError, match="not in this search space"):
        space.recipe(params)


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["freeze", "formats", "min_keep", "keep_step", "temperature", "alpha", "epochs", "junk"]
        ),
        st.one_of(
            st.none(),
            st.integers(-3, 3),
            st.floats(allow_nan=True),
            st.text(max_size=5),
            st.lists(st.integers(-2, 9), max_size=3),
        ),
    )
)
def test_space_config_parser_accepts_or_refuses_cleanly(data):
    try:
        config = SpaceConfig.from_dict(data)
    except ConfigError:
        return
    assert 0 < config.min_keep <= 1 and 0 < config.keep_step <= 1
    assert 0 < config.temperature[0] <= config.temperature[1]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"latency_ms": -1.0}, "--latency-budget-ms must be a positive number"),
        ({"latency_ms": 0.0}, "--latency-budget-ms must be a positive number"),
        ({"latency_ms": math.nan}, "--latency-budget-ms must be a positive number"),
        ({"memory_mb": math.inf}, "--memory-budget-mb must be a positive number"),
        ({"size_mb": -0.5}, "--size-budget-mb must be a positive number"),
        ({"latency_fraction": 2.0}, "fraction <= 1"),
        ({"latency_ms": 1.0, "latency_fraction": 0.5}, "not both"),
    ],
)
def test_nonsense_budgets_are_refused(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        Budget(**kwargs)


def test_budget_constraints_are_negative_within_budget():
    budget = Budget(latency_fraction=0.25, memory_mb=2.0, size_mb=0.5)
    assert budget.latency_ms_for(teacher_latency_ms=4.0) == 1.0
    assert budget.constraints(0.8, 1.0, 1.5e6, 0.4e6) == pytest.approx(
        {"latency_ms": -0.2, "memory_mb": -0.5, "size_mb": -0.1}
    )
    assert all(c > 0 for c in budget.constraints(1.2, 1.0, 3e6, 0.6e6).values())
    assert list(Budget().constraints(1.2, 1.0, 3e6, 1e6)) == ["latency_ms"]  # only budgets given count
