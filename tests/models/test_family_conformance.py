"""Every registered model family passes these checks (a new family passes them by registering).

Each family is checked on a small instance (``Family.small``): its structure names real modules;
pruning structures whose weights are all zero leaves outputs unchanged; its kernels add up exactly
to the model's MACs and parameters; ONNX Runtime computes what PyTorch computes; checkpoints round
trip; and every runtime format its layers offer exports and is verified in the written graph.
"""

from __future__ import annotations

import json
import random

import numpy as np
import onnx
import pytest
import torch

from paretone.audio import FrontEndConfig
from paretone.compress import Prune, Quantize, Recipe, apply, export_compressed, formats_for
from paretone.errors import ConfigError
from paretone.hw_models import calibration_kernels, onnx_macs, random_recipe
from paretone.models import (
    ATTENTION_HEADS,
    FAMILIES,
    DenseWeightConv,
    build_model,
    config_from_dict,
    config_to_dict,
    count_complexity,
    export_onnx,
    family_of,
    load_model,
    save_model,
)
from paretone.runtime import make_session, run_logits

FAMILY_NAMES = sorted(FAMILIES)


def _config(name: str):
    family = FAMILIES[name]
    return family.teacher_config(num_classes=5, front_end=FrontEndConfig(), **family.small)


def _model(name: str, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(_config(name)).eval()


def _waves(n: int = 4) -> torch.Tensor:
    return torch.randn(n, 8000, generator=torch.Generator().manual_seed(1)) * 0.1


@pytest.fixture(params=FAMILY_NAMES)
def name(request) -> str:
    return request.param


def test_configuration_round_trips_and_is_type_checked(name):
    config = _config(name)
    data = json.loads(json.dumps(config_to_dict(config)))
    assert data["family"] == name and config_from_dict(data) == config
    assert family_of(config) is FAMILIES[name]
    with pytest.raises(ConfigError, match="must be"):
        config_from_dict({**data, "num_classes": "5"})
    with pytest.raises(ConfigError, match="unknown field"):
        config_from_dict({**data, "surprise": 1})
    with pytest.raises(ConfigError, match="unknown model family"):
        config_from_dict({**data, "family": "nonesuch"})


def test_structure_names_real_modules_with_their_sizes(name):
    model = _model(name)
    structure = model.structure()
    modules = dict(model.named_modules())
    assert structure.prunable and structure.quantizable
    for unit in structure.prunable:
        assert unit.size >= 1 and all(m in modules for m in unit.modules), unit
    for layer in structure.quantizable:
        weights = modules[layer.name].named_parameters()
        stored = sum(p.numel() for n, p in weights if not n.rpartition(".")[2].startswith("bias"))
        assert stored == layer.params, layer
        assert formats_for(layer.kind), f"{layer.name}: no runtime format for {layer.kind}"
    assert structure.front_end == model.config.front_end
    assert model(_waves()).shape == (4, 5)
    assert torch.allclose(model(_waves()), model.classify(model.features(_waves())))


def _ownership(model, unit: str) -> dict[str, torch.Tensor]:
    """Per parameter, which structures of ``unit`` own which elements: the gradient of the unit's
    elementwise scores with the parameters themselves as the value (the scores are sums over them)."""
    params = dict(model.named_parameters())
    scores = family_of(model.config).unit_scores(model, lambda key: params[key])[unit]
    return params, scores


def _kill(model, unit_name: str, size: int, per_head: bool) -> int:
    """Zero every weight owned by some structures of a unit; return how many survive."""
    params, scores = _ownership(model, unit_name)
    dead = list(range(0, size, 2))[: size - 1] or [0]
    chosen = torch.zeros_like(scores)
    if per_head:
        chosen[:, dead] = 1  # the same channels in every head
    else:
        chosen[dead] = 1
    masks = torch.autograd.grad((scores * chosen).sum(), list(params.values()), allow_unused=True)
    with torch.no_grad():
        for param, mask in zip(params.values(), masks, strict=True):
            if mask is not None:
                param[mask != 0] = 0
    return size - len(dead)


def test_pruning_dead_structures_leaves_outputs_unchanged(name):
    for unit in _model(name).structure().prunable:
        teacher = _model(name)
        per_head = _ownership(teacher, unit.name)[1].dim() == 2
        kept = _kill(teacher, unit.name, unit.size, per_head)
        if unit.kind == ATTENTION_HEADS:
            prune = Prune(heads={unit.name: kept})
        else:
            prune = Prune(channels={unit.name: kept / unit.size})
        student = apply(Recipe.of(prune), teacher).eval()
        assert student.structure().unit(unit.name).size == kept, unit.name
        assert count_complexity(student).params < count_complexity(teacher).params, unit.name
        with torch.no_grad():
            assert torch.allclose(student(_waves()), teacher(_waves()), atol=1e-5), unit.name


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernels_add_up_to_the_student_macs_and_params(name, seed):
    teacher = _model(name)
    recipe = random_recipe(teacher.structure(), random.Random(seed))
    student = apply(recipe, teacher)
    kernels = recipe.kernels(teacher.config)
    assert sum(k.macs for k in kernels) == count_complexity(student).dense_macs
    assert sum(k.params for k in kernels) == sum(p.numel() for p in student.parameters())
    # weights the graph computes at load: the "dft" front-end's kernel, float structured convs' dense weights
    dft = dict(student.named_buffers()).get("front_end.mel.dft")
    dense = [m.dense_weight() for m in student.modules() if isinstance(m, DenseWeightConv)]
    computed = 4 * ((0 if dft is None else dft.numel()) + sum(w.numel() for w in dense))
    assert sum(k.computed_weight_bytes for k in kernels) == computed
    calibrated = {(k.kind, k.format) for k in calibration_kernels(teacher.config)}
    assert {(k.kind, k.format) for k in kernels} <= calibrated  # the sweep covers every student


def test_onnx_runtime_computes_what_pytorch_computes(name, tmp_path):
    model = _model(name)
    path = export_onnx(model, tmp_path / "m.onnx")
    waves = _waves(6)
    with torch.no_grad():
        expected = model(waves).numpy()
    got = run_logits(path, waves.numpy())
    assert np.abs(got - expected).max() < 1e-3 and (got.argmax(1) == expected.argmax(1)).all()
    assert onnx_macs(path) == count_complexity(model).dense_macs
    assert [i.name for i in onnx.load(str(path)).graph.input] == ["waveform"]


def test_checkpoint_round_trip_gives_identical_outputs(name, tmp_path):
    model = _model(name)
    save_model(tmp_path / "ckpt", model, labels=tuple("abcde"))
    loaded = load_model(tmp_path / "ckpt")
    assert (
        loaded.config == model.config and loaded.labels == tuple("abcde") and loaded.task == "classification"
    )
    with torch.no_grad():
        assert torch.equal(loaded.model(_waves()), model(_waves()))


@pytest.mark.slow  # one export per format per family: 40 s in all
def test_every_offered_runtime_format_exports_and_is_verified(name, tmp_path):
    teacher = _model(name)
    structure = teacher.structure()
    names = sorted({f.name for q in structure.quantizable for f in formats_for(q.kind)})
    calibration = _waves(16)
    for fmt in names:
        layers = [q.name for q in structure.quantizable if fmt in {f.name for f in formats_for(q.kind)}]
        recipe = Recipe.of(Quantize(dict.fromkeys(layers, fmt)))
        student = apply(recipe, teacher)
        path = tmp_path / f"{fmt}.onnx"
        report = {d.layer: d for d in export_compressed(student, recipe, path, calibration=calibration)}
        assert {report[layer].format.name for layer in layers} == {fmt}
        session = make_session(path, 1)
        assert np.isfinite(run_logits(session, calibration.numpy())).all()
