from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paretone.compress import (
    RECIPE_FORMAT,
    Distill,
    FrontEnd,
    Prune,
    Quantize,
    Recipe,
    formats_for,
    runtime_format,
)
from paretone.errors import ConfigError
from paretone.models import ASTConfig, CNNConfig, build_model
from tests.helpers import assert_one_line, is_one_line

AST_STRUCTURE = build_model(ASTConfig.uniform(num_classes=10, dim=32, depth=2, heads=2)).structure()
CNN_STRUCTURE = build_model(CNNConfig.uniform(num_classes=10, channels=(4, 8))).structure()

RECIPE = Recipe.of(
    Prune(
        heads={"blocks.0.attn.heads": 1},
        channels={"blocks.1.attn.qk_channels": 0.5, "blocks.0.ffn.hidden": 0.25},
        importance="taylor",
    ),
    Quantize({"blocks.0.attn.q": "w4", "patch_embed": "w8a8"}),
    Distill(temperature=3.0, alpha=0.7),
)
V1 = {
    "format": "paretone.recipe/1",
    "paretone_version": "0.1.0",
    "heads": {"blocks.0.attn.heads": 1},
    "channels": {"blocks.1.attn.qk_channels": 0.5, "blocks.0.ffn.hidden": 0.25},
    "precision": {
        "blocks.0.attn.q": {"weight_bits": 4, "activation_bits": None},
        "patch_embed": {"weight_bits": 8, "activation_bits": 8},
        "blocks.1.attn.k": {"weight_bits": None, "activation_bits": None},
    },
    "distillation": {"temperature": 3.0, "alpha": 0.7},
    "importance": "taylor",
    "front_end": {"implementation": None, "hop_length": None},
}


def test_recipe_round_trips_through_json():
    data = json.loads(json.dumps(RECIPE.to_dict()))
    assert data["format"] == RECIPE_FORMAT and "paretone_version" in data
    assert list(data["operators"]) == ["prune", "quantize", "distill"]  # in application order
    assert Recipe.from_dict(data) == RECIPE
    RECIPE.check(AST_STRUCTURE)


def test_every_paretone_recipe_1_file_still_reads_as_the_same_recipe():
    assert Recipe.from_dict(V1) == RECIPE  # bits name the same runtime formats; float entries say nothing
    assert Recipe.from_dict({"format": "paretone.recipe/1"}) == Recipe()


def test_kept_counts_round_and_never_reach_zero():
    prune = RECIPE.get(Prune)
    assert prune.kept("blocks.0.attn.heads", 2) == 1
    assert prune.kept("blocks.1.attn.qk_channels", 16) == 8
    assert prune.kept("blocks.0.ffn.hidden", 2) == 1  # 0.5 rounds to 0: at least one survives
    assert prune.kept("blocks.1.ffn.hidden", 64) == 64  # not mentioned: kept whole


def test_recipe_describes_itself_in_words_and_in_a_cell():
    words = RECIPE.describe(AST_STRUCTURE)
    assert "Attention heads kept: 3 of 4." in words
    assert any(w.startswith("Layer formats: ") and "1 x w4" in w for w in words)
    assert words[-1] == "Distilled from the teacher at temperature 3.00, KD weight 0.70."
    assert RECIPE.summary(AST_STRUCTURE).startswith("heads 3/4 ch ")
    assert Recipe.of(FrontEnd("dft", 160)).summary(AST_STRUCTURE).startswith("dft/hop160")


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        (lambda: Recipe.of(Prune(heads={"blocks.9.attn.heads": 1})), "not an attention-heads unit"),
        (lambda: Recipe.of(Prune(heads={"blocks.0.attn.heads": 3})), "the teacher has 2"),
        (lambda: Recipe.of(Prune(heads={"blocks.0.attn.heads": 0})), "at least one whole head"),
        (lambda: Recipe.of(Prune(channels={"blocks.0.attn.qk_channels": 0.0})), r"in \(0, 1\]"),
        (lambda: Recipe.of(Prune(channels={"blocks.0.attn.qk_channels": 1.5})), r"in \(0, 1\]"),
        (lambda: Recipe.of(Prune(channels={"blocks.0.attn.heads": 0.5})), "unknown unit"),
        (lambda: Recipe.of(Quantize({"head": "w8a8"})), "not a quantizable layer"),
        (lambda: Recipe.of(Quantize({"blocks.0.attn.q": "w3"})), "no runtime format 'w3'"),
        (lambda: Recipe.of(Prune(importance="random")), "importance"),
        (lambda: Recipe.of(Distill(temperature=0)), "temperature"),
        (lambda: Recipe.of(FrontEnd(hop_length=400)), "hop_length must not exceed n_fft"),
        (
            lambda: Recipe.from_dict(
                {**V1, "precision": {"blocks.0.attn.q": {"weight_bits": None, "activation_bits": 8}}}
            ),
            "weights too",
        ),
    ],
)
def test_invalid_recipes_are_refused_with_the_reason(recipe, message):
    with pytest.raises(ConfigError, match=message):
        recipe().check(AST_STRUCTURE)


def test_conv_has_no_low_bit_weight_only_kernel():
    with pytest.raises(ConfigError, match="choose one of float, w8a8, w8"):
        Recipe.of(Quantize({"blocks.0.conv": "w4"})).check(CNN_STRUCTURE)
    assert not runtime_format("conv2d", "w8").native  # stored compressed, computed in float
    assert runtime_format("conv2d", "w8a8").native and runtime_format("linear", "w2").native


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
        {"format": RECIPE_FORMAT, "operators": {"sparsify": {}}},
        {"format": RECIPE_FORMAT, "operators": {"prune": {"heads": []}}},
        {"format": RECIPE_FORMAT, "operators": []},
        {"format": RECIPE_FORMAT, "operators": {"quantize": {"formats": {"x": 8}}}},
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


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries(
        {"format": st.just("paretone.recipe/1")},
        optional={k: json_values for k in ("heads", "channels", "precision", "distillation", "importance")},
    )
)
def test_fuzzed_v1_recipes_fail_only_with_config_errors(data):
    assert _parse_outcome(data) in {"refused", "round-trips"}


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries(
        {"format": st.just(RECIPE_FORMAT)},
        optional={
            "operators": st.dictionaries(
                st.sampled_from(["prune", "quantize", "distill", "front_end", "other"]),
                json_values,
                max_size=3,
            )
        },
    )
)
def test_fuzzed_recipes_fail_only_with_config_errors(data):
    assert _parse_outcome(data) in {"refused", "round-trips"}


def _parse_outcome(data) -> str:
    """Any JSON either parses into a recipe that round-trips ("round-trips"), or fails with
    ConfigError alone, in one line ("refused"); a parsed recipe either fits the AST or is refused
    the same way. Anything else raises or names what went wrong."""
    try:
        recipe = Recipe.from_dict(data)
    except ConfigError as exc:
        return "refused" if is_one_line(exc) else f"refused over several lines: {exc}"
    if Recipe.from_dict(recipe.to_dict()) != recipe:
        return "changed by a round trip"
    try:
        recipe.check(AST_STRUCTURE)
    except ConfigError as exc:
        return "round-trips" if is_one_line(exc) else f"check refused over several lines: {exc}"
    return "round-trips"


def test_an_unknown_field_holding_a_newline_is_quoted_not_breaking_the_line():
    with pytest.raises(ConfigError) as refused:
        Recipe.from_dict({"format": RECIPE_FORMAT, "operators": {"prune": {"\n": None}}})
    assert_one_line(refused.value)
    assert "unknown field(s) '\\n'; known:" in str(refused.value)  # found by the fuzz test above
