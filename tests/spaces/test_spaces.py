"""The search space offers exactly what the exporter ships, narrows as configured, round-trips."""

import json

import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paretone.compress import RUNTIME_FORMATS, Prune, Quantize, UniformSetting
from paretone.errors import ConfigError
from paretone.models import ASTConfig, CNNConfig, build_model
from paretone.spaces import SearchSpace, SpaceConfig
from tests.helpers import assert_one_line

AST = ASTConfig.uniform(num_classes=10, dim=32, depth=2, heads=2, mlp_ratio=2)
CNN = CNNConfig.uniform(num_classes=10, channels=(8, 8, 16, 16))


def _by_name(space: SearchSpace) -> dict:
    return {p.name: p for p in space.all_params()}


def test_space_covers_every_unit_and_layer_with_runtime_formats():
    structure = build_model(AST).structure()
    space = SearchSpace.build(structure)
    params = _by_name(space)
    assert {n for n in params if n.startswith("heads:")} == {
        f"heads:{u.name}" for u in structure.prunable if u.kind == "attention_heads"
    }
    assert {n for n in params if n.startswith("keep:")} == {
        f"keep:{u.name}" for u in structure.prunable if u.kind != "attention_heads"
    }
    linear = tuple(f.name for f in RUNTIME_FORMATS if f.layer_kind == "linear")
    assert params["format:blocks.0.attn.q"].choices == linear  # derived from the format table
    assert params["format:patch_embed"].choices == ("float", "w8a8", "w8")
    assert params["front_end"].choices == ("stft", "dft") and params["hop_length"].choices == (80, 160, 240)
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
        assert recipe.kernels(config)  # every point has a kernel list (predictable cost)
        study.tell(trial, 0.0)


def test_config_freezes_and_restricts():
    structure = build_model(AST).structure()
    config = SpaceConfig.from_dict(
        {
            "freeze": ["blocks.0.*", "front_end"],
            "formats": {"*.fc2": ["float"], "*": ["float", "w8a8"]},
            "min_keep": 0.5,
            "epochs": [1, 3],
        }
    )
    space = SearchSpace.build(structure, config)
    params = _by_name(space)
    assert not any("blocks.0." in name for name in params) and "front_end" not in params
    assert "format:blocks.1.ffn.fc2" not in params  # float only: nothing to search
    assert params["format:blocks.1.attn.q"].choices == ("float", "w8a8")
    assert all(p.low == 0.5 for n, p in params.items() if n.startswith("keep:"))
    values = {**space.uniform(UniformSetting(1.0, "w8a8")), "epochs": 3}
    assert space.epochs_for(values, default=2) == 3
    assert space.front_end_options() == [None]
    with pytest.raises(ConfigError, match="cannot run w4"):
        SearchSpace.build(structure, SpaceConfig.from_dict({"formats": {"patch_embed": ["w4"]}}))


def test_uniform_baseline_prunes_and_quantizes_everything_alike():
    space = SearchSpace.build(build_model(AST).structure())
    recipe = space.recipe(space.uniform(UniformSetting(0.5, "w8a8")))
    assert set(recipe.get(Prune).channels.values()) == {0.5}
    assert set(recipe.get(Prune).heads.values()) == {1}
    assert set(recipe.get(Quantize).formats.values()) == {"w8a8"}


def test_space_round_trips_through_json():
    space = SearchSpace.build(build_model(CNN).structure(), SpaceConfig(epochs=(2, 4)))
    again = SearchSpace.from_dict(json.loads(json.dumps(space.to_dict())))
    assert again == space and again.distributions() == space.distributions()
    with pytest.raises(ConfigError, match=r"paretone\.space/2 search space \(a study started by an older"):
        SearchSpace.from_dict({"format": "paretone.space/1"})


def test_recipe_refuses_foreign_parameters():
    space = SearchSpace.build(build_model(AST).structure())
    params = {**space.uniform(UniformSetting(1.0, "float")), "heads:blocks.9.attn.heads": 1}
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
    """Any [space] table either builds a space whose every point is a valid recipe, or fails with
    ConfigError alone (never a TypeError, never a silently misread setting), in one line."""
    structure = build_model(AST).structure()
    try:
        space = SearchSpace.build(structure, SpaceConfig.from_dict(data))
    except ConfigError as exc:
        assert_one_line(exc)
        return
    assert space.all_params()  # something to search over
    for keep in (0.0, 1.0):
        space.recipe(space.uniform(UniformSetting(keep, "w8a8"))).check(structure)


def test_a_string_where_a_list_belongs_is_refused_not_split_into_characters():
    with pytest.raises(ConfigError, match=r"freeze must be a list of patterns"):
        SpaceConfig.from_dict({"freeze": "blocks.0.*"})
    with pytest.raises(ConfigError, match=r"formats\['\*'\] must be a list"):
        SearchSpace.build(build_model(AST).structure(), SpaceConfig.from_dict({"formats": {"*": "w8a8"}}))
    with pytest.raises(ConfigError, match="unknown settings junk"):
        SpaceConfig.from_dict({"junk": 1})


def test_new_students_are_arms_of_the_space_with_their_own_parameters():
    teacher = build_model(AST)
    config = SpaceConfig.from_dict({"students": ["lstm:hidden=32", "gru:hidden=16,16;epochs=5"]})
    space = SearchSpace.build(teacher.structure(), config, teacher=AST)
    params = _by_name(space)
    assert params["student"].choices == ("teacher", "lstm:hidden=32", "gru:hidden=16,16;epochs=5")
    assert params["lstm:hidden=32/format:rnn.0"].choices == ("float", "w8a8-dynamic")
    assert "gru:hidden=16,16;epochs=5/format:rnn.1" not in params  # GRU layers run float only
    assert "gru:hidden=16,16;epochs=5/format:head" in params
    assert not any(n.startswith("lstm:hidden=32/keep:") for n in params)  # sizes are chosen directly
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    arms = set()
    for _ in range(30):
        trial = study.ask(space.distributions())
        recipe = space.recipe(trial.params)
        config_of = recipe.base_config(AST)
        arms.add(getattr(config_of, "family", None))
        recipe.check(recipe.base_structure(AST))
        assert recipe.kernels(AST)
        study.tell(trial, 0.0)
    assert arms == {"ast", "lstm", "gru"}
    gru = space.recipe(space.uniform(UniformSetting(0.5, "w8a8"), "gru:hidden=16,16;epochs=5"))
    assert gru.base_config(AST).hidden == (16, 16) and gru.to_dict()["operators"]["student"]["epochs"] == 5
    assert gru.layer_formats(gru.base_structure(AST))["head"] == "w8a8"
    again = SearchSpace.from_dict(json.loads(json.dumps(space.to_dict())))
    assert again == space


@pytest.mark.parametrize(
    ("students", "message"),
    [
        ("lstm:64", "students must be a list"),
        (["lstm:hidden"], "write family:size"),
        (["lstm:width=3"], "'width' is not a size of the lstm family"),
        (["nonesuch:hidden=3"], "unknown model family"),
    ],
)
def test_malformed_student_offers_are_one_line_errors(students, message):
    teacher = build_model(AST)
    with pytest.raises(ConfigError, match=message):
        SearchSpace.build(teacher.structure(), SpaceConfig.from_dict({"students": students}), teacher=AST)
