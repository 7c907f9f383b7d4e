"""Every registered operator and runtime format passes these checks, on every registered family."""

from __future__ import annotations

import json
import random

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, numpy_helper

from paretone.audio import FrontEndConfig
from paretone.compress import (
    INTEGER_KERNEL_WEIGHT_QMAX,
    OPERATORS,
    RUNTIME_FORMATS,
    Quantize,
    Recipe,
    UniformSetting,
    apply,
    export_compressed,
    runtime_format,
)
from paretone.errors import ConfigError
from paretone.models import FAMILIES, build_model, count_complexity
from paretone.runtime import run_logits


def _teacher(family: str):
    f = FAMILIES[family]
    torch.manual_seed(0)
    return build_model(f.teacher_config(num_classes=4, front_end=FrontEndConfig(), **f.small)).eval()


@pytest.fixture(params=sorted(OPERATORS))
def operator(request):
    return OPERATORS[request.param]


@pytest.fixture(params=sorted(FAMILIES))
def teacher(request):
    return _teacher(request.param)


def _sample(params, seed: int) -> dict:
    rng = random.Random(seed)
    values = {}
    for p in params:
        if p.kind == "categorical":
            values[p.name] = rng.choice(p.choices)
        elif p.kind == "int":
            values[p.name] = rng.randint(int(p.low), int(p.high))
        else:
            steps = round((p.high - p.low) / p.step) if p.step else None
            values[p.name] = p.low + p.step * rng.randint(0, steps) if steps else rng.uniform(p.low, p.high)
    return values


def test_defaults_change_nothing_and_entries_round_trip(operator, teacher):
    default = operator()
    assert operator.from_entry(json.loads(json.dumps(default.to_entry()))) == default
    assert Recipe.of(default) == Recipe()  # an entry at its defaults says nothing
    default.check(teacher.structure())
    assert isinstance(default.describe(teacher.structure()), list)


def test_searched_points_are_recipes_the_teacher_accepts(operator, teacher):
    structure = teacher.structure()
    params = operator.parameters(structure, operator.example_settings, lambda name: False)
    names = [p.name for p in params]
    assert len(names) == len(set(names))
    for seed in range(4):
        entry = operator.from_params(_sample(params, seed), params)
        if entry is None:
            continue
        entry.check(structure)
        assert operator.from_entry(json.loads(json.dumps(entry.to_entry()))) == entry
        recipe = Recipe.of(entry)
        student = apply(recipe, teacher).eval()
        kernels = recipe.kernels(teacher.config)
        assert sum(k.params for k in kernels) == count_complexity(student).params
        assert sum(k.macs for k in kernels) == count_complexity(student).dense_macs
    for keep in (1.0, 0.5, 0.0):
        values = operator.uniform(params, UniformSetting(keep, "w8a8"))
        assert set(values) == set(names)
        entry = operator.from_params(values, params)
        if entry is not None:
            entry.check(structure)


def test_a_frozen_space_offers_nothing(operator, teacher):
    assert operator.parameters(teacher.structure(), operator.example_settings, lambda name: True) == []


@pytest.mark.parametrize("garbage", [None, 3, "x", [1], {"surprise": 1}])
def test_malformed_entries_are_config_errors(operator, garbage):
    with pytest.raises(ConfigError):
        operator.from_entry(garbage)


def test_every_runtime_format_is_data_with_a_verifier():
    seen = set()
    for fmt in RUNTIME_FORMATS:
        assert (fmt.layer_kind, fmt.name) not in seen
        seen.add((fmt.layer_kind, fmt.name))
        assert runtime_format(fmt.layer_kind, fmt.name) is fmt and callable(fmt.verify)
        assert (fmt.convert is None) == fmt.is_float  # float needs no conversion, the rest do
        assert fmt.block_size is None or fmt.activation_bits is None
    with pytest.raises(ConfigError, match="choose one of"):
        runtime_format("conv2d", "w4")


def test_integer_kernels_get_weights_no_cpu_can_saturate_on(teacher, tmp_path):
    """uint8 x int8 products summed in pairs in int16 (x86 without VNNI) saturate past code 64: every
    format with an integer kernel stores its weights on [-64, 64], on every family that offers it,
    and the file computes what the fake-quantized student does."""
    structure = teacher.structure()
    formats = {}
    for layer in structure.quantizable:
        integer = [f for f in RUNTIME_FORMATS if f.layer_kind == layer.kind and f.activation_bits]
        if integer:
            formats[layer.name] = integer[0].name
    assert formats  # every family has one (a recurrent family's head, at least)
    recipe = Recipe.of(Quantize(formats))
    student = apply(recipe, teacher).eval()
    waves = torch.randn(8, 8000, generator=torch.Generator().manual_seed(1)) * 0.1
    path = tmp_path / "student.onnx"
    export_compressed(student, recipe, path, calibration=waves)
    graph = onnx.load(path).graph
    codes = [numpy_helper.to_array(t) for t in graph.initializer if t.data_type == TensorProto.INT8]
    assert codes and max(int(np.abs(c.astype(np.int32)).max()) for c in codes) == INTEGER_KERNEL_WEIGHT_QMAX
    with torch.no_grad():
        fake = student(waves).numpy()
    assert np.abs(run_logits(path, waves.numpy()) - fake).max() < 0.05 * np.abs(fake).max()
