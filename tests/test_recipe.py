from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paretone.compress import Distillation, LayerPrecision, Recipe, format_for, formats_for
from paretone.errors import ConfigError
from paretone.models import ASTConfig, CNNConfig, build_model

AST_STRUCTURE = build_model(ASTConfig.uniform(num_classes=10, dim=32, depth=2, heads=2)).structure()
CNN_STRUCTURE = build_model(CNNConfig.uniform(num_classes=10, channels=(4, 8))).structure()

RECIPE = Recipe(
    heads={"blocks.0.attn.heads": 1},
    channels={"blocks.1.attn.qk_channels": 0.5, "blocks.0.ffn.hidden": 0.25},
    precision={"blocks.0.attn.q": LayerPrecision(4, None), "patch_embed": LayerPrecision(8, 8)},
    distillation=Distillation(temperature=3.0, alpha=0.7),
    importance="taylor",
)


def test_recipe_round_trips_through_json():
    data = json.loads(json.dumps(RECIPE.to_dict()))
    assert data["format"] == "paretone.recipe/1" and "paretone_version" in data
    assert Recipe.from_dict(data) == RECIPE
    RECIPE.check(AST_STRUCTURE)


def test_kept_counts_round_and_never_reach_zero():
    assert RECIPE.kept("blocks.0.attn.heads", 2) == 1
    assert RECIPE.kept("blocks.1.attn.qk_channels", 16) == 8
    assert RECIPE.kept("blocks.0.ffn.hidden", 2) == 1  # 0.5 rounds to 0: at least one survives
    assert RECIPE.kept("blocks.1.ffn.hidden", 64) == 64  # not mentioned: kept whole


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        (lambda: Recipe(heads={"blocks.9.attn.heads": 1}), "not an attention-heads unit"),
        (lambda: Recipe(heads={"blocks.0.attn.heads": 3}), "the teacher has 2"),
        (lambda: Recipe(heads={"blocks.0.attn.heads": 0}), "at least one whole head"),
        (lambda: Recipe(channels={"blocks.0.attn.qk_channels": 0.0}), r"in \(0, 1\]"),
        (lambda: Recipe(channels={"blocks.0.attn.qk_channels": 1.5}), r"in \(0, 1\]"),
        (lambda: Recipe(channels={"blocks.0.attn.heads": 0.5}), "unknown unit"),
        (lambda: Recipe(precision={"head": LayerPrecision(8, 8)}), "not a quantizable layer"),
        (lambda: Recipe(precision={"blocks.0.attn.q": LayerPrecision(3, None)}), "no ONNX Runtime kernel"),
        (lambda: Recipe(precision={"blocks.0.attn.q": LayerPrecision(None, 8)}), "no ONNX Runtime kernel"),
        (lambda: Recipe(importance="random"), "importance"),
        (lambda: Recipe(distillation=Distillation(temperature=0)), "temperature"),
    ],
)
def test_invalid_recipes_are_refused_with_the_reason(recipe, message):
    with pytest.raises(ConfigError, match=message):
        recipe().check(AST_STRUCTURE)


def test_conv_has_no_low_bit_weight_only_kernel():
    with pytest.raises(ConfigError, match="no ONNX Runtime kernel"):
        Recipe(precision={"blocks.0.conv": LayerPrecision(4, None)}).check(CNN_STRUCTURE)
    assert not format_for("conv2d", 8, None).native  # stored compressed, computed in float
    assert format_for("conv2d", 8, 8).native and format_for("linear", 2, None).native


def test_format_table_covers_float_int8_and_nbits():
    linear = {(f.weight_bits, f.activation_bits) for f in formats_for("linear")}
    assert linear == {(None, None), (8, 8), (2, None), (4, None), (8, None)}


@pytest.mark.parametrize(
    "data",
    [
        None,
        {"format": "paretone.recipe/0"},
        {"format": "paretone.recipe/1", "surprise": 1},
        {"format": "paretone.recipe/1", "precision": {"x": {"weight_bits": "4", "activation_bits": None}}},
        {"format": "paretone.recipe/1", "precision": {"x": {"weight_bits": 4}}},
        {"format": "paretone.recipe/1", "heads": {"a": 1.5}},
        {"format": "paretone.recipe/1", "distillation": {"alpha": 2}},
        {"format": "paretone.recipe/1", "channels": []},
    ],
)
def test_malformed_recipe_json_is_a_config_error(data):
    with pytest.raises(ConfigError):
        Recipe.from_dict(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {"format": st.just("paretone.recipe/1")},
        optional={k: json_values for k in ("heads", "channels", "precision", "distillation", "importance")},
    )
)
def test_fuzzed_recipes_fail_only_with_config_errors(data):
    """Any JSON either parses into a recipe that round-trips, or fails with ConfigError alone."""
    try:
        recipe = Recipe.from_dict(data)
    except ConfigError:
        return
    assert Recipe.from_dict(recipe.to_dict()) == recipe
    with contextlib.suppress(ConfigError):
        recipe.check(AST_STRUCTURE)
