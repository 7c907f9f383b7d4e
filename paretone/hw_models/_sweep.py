"""Which kernels to calibrate: every shape and format compression can make of a teacher.

The family lists every float shape its students can have (widths on a grid: see
``models.width_grid``); here each front-end variant the search may choose is added, and every
quantizable kernel in each runtime format its layer offers. Random compressed whole models (for the
per-model overhead) come from ``random_recipe``, which the validation uses too, with other seeds.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping, Sequence
from typing import Any

from paretone.compress import (
    OPERATORS,
    FrontEnd,
    Param,
    Prune,
    Quantize,
    Recipe,
    formats_for,
    front_end_options,
    student_variants,
)
from paretone.models import ATTENTION_HEADS, Kernel, ModelStructure, family_of


def calibration_kernels(
    teacher: Any, operators: Mapping[str, Sequence[Param]] | None = None, *, chunk_samples: int | None = None
) -> list[Kernel]:
    """Kernels to measure so that every student of ``teacher`` is covered: every shape pruning
    leaves, at every front-end choice, in every runtime format its layer offers, plus the shapes
    the ``operators`` searched (operator key -> its search parameters) add at every hop;
    with ``chunk_samples``, also every shape one call of a streaming student takes on such chunks."""
    family = family_of(teacher)
    floats: set[Kernel] = set()
    every_hop: set[Kernel] = set()  # the teacher's implementation at each hop and band count
    for variant, chunk in student_variants(teacher, chunk_samples=chunk_samples):
        kernels = family.calibration_kernels(variant)
        floats |= kernels
        if chunk is not None:
            floats |= family.calibration_kernels(chunk)
        if variant.front_end.implementation == teacher.front_end.implementation:  # later layers alike
            every_hop |= kernels
    for key, params in (operators or {}).items():  # operators' own shapes, once over every hop's
        floats |= OPERATORS[key].sweep(every_hop, params, teacher=teacher, chunk_samples=chunk_samples)
    kernels = set(floats)
    for kernel in floats:
        if kernel.layer_kind is not None:
            kernels |= {dataclasses.replace(kernel, format=f.name) for f in formats_for(kernel.layer_kind)}
    return sorted(kernels, key=lambda k: k.key)


SMALL_KEPT = 0.25  # a small model keeps at most this share of every unit


def random_recipe(structure: ModelStructure, rng: random.Random, *, small: bool = False) -> Recipe:
    """A random compression of a teacher: what the search might propose, for fitting and validation.

    Each unit is pruned with probability 1/2 (to a uniform kept fraction), each layer gets a
    uniformly drawn format and the front-end a drawn implementation, hop and band count, so large,
    float and low-bit models all occur. ``small``: every unit pruned to at most ``SMALL_KEPT``, near
    the space's floor, which a model drawn the first way almost never comes near.
    """
    heads, channels, formats = {}, {}, {}
    options = front_end_options(structure.front_end)
    front_end = FrontEnd(
        rng.choice(options.implementations), rng.choice(options.hop_lengths), rng.choice(options.n_mels)
    )
    most = SMALL_KEPT if small else 1.0
    for unit in structure.prunable:
        if not small and rng.random() < 0.5:
            continue
        if unit.kind == ATTENTION_HEADS:
            heads[unit.name] = rng.randint(1, max(1, round(unit.size * most)))
        else:
            channels[unit.name] = round(rng.uniform(max(1 / unit.size, 0.05), most), 3)
    for layer in structure.quantizable:
        formats[layer.name] = rng.choice(formats_for(layer.kind)).name
    return Recipe.of(front_end, Prune(heads, channels), Quantize(formats))
