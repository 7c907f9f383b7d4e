from __future__ import annotations

import json

import pytest
import torch

from paretone.audio import WaveformSet
from paretone.compress import Prune, Quantize, Recipe, apply, load_student, save_student
from paretone.errors import CheckpointError
from paretone.models import ASTConfig, build_model

RECIPE = Recipe.of(
    Prune({"blocks.0.attn.heads": 1}, {"blocks.0.ffn.hidden": 0.5}, importance="taylor"),
    Quantize({"blocks.0.attn.q": "w4", "blocks.0.ffn.fc1": "w8a8"}),
)


@pytest.fixture
def student(tmp_path):
    torch.manual_seed(0)
    teacher = build_model(ASTConfig.uniform(num_classes=4, dim=32, depth=1, heads=2)).eval()
    data = WaveformSet(torch.randn(16, 8000) * 0.1, torch.arange(16) % 4)
    model = apply(RECIPE, teacher, data=data).eval()
    save_student(tmp_path / "s", model, RECIPE, labels=("a", "b", "c", "d"))
    return tmp_path / "s", model


def test_recipe_and_safetensors_rebuild_the_identical_student(student):
    path, model = student
    loaded, recipe = load_student(path)
    assert recipe == RECIPE
    assert loaded.config.blocks[0].num_heads == 1 and loaded.config.blocks[0].ffn_dim == 32
    waves = torch.randn(3, 8000) * 0.1
    with torch.no_grad():
        assert torch.equal(loaded.model(waves), model(waves))
    quantizer = loaded.model.blocks[0].ffn.fc1.input_quant
    assert bool(quantizer.initialized) and quantizer.range_max > quantizer.range_min


def test_recipe_naming_unknown_layers_is_refused(student):
    path, _ = student
    data = json.loads((path / "recipe.json").read_text())
    data["operators"]["quantize"]["formats"]["blocks.7.attn.q"] = "w4"
    (path / "recipe.json").write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=r"blocks\.7\.attn\.q"):
        load_student(path)


def test_missing_recipe_is_refused(student):
    path, _ = student
    (path / "recipe.json").unlink()
    with pytest.raises(
        CheckpointError, match=r"recipe\.json: no such file; a student folder holds recipe\.json"
    ):
        load_student(path)
