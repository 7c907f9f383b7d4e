"""The family interface: everything paretone needs to know about one kind of model, in one place.

A family owns its configuration class, ``build``, its structure (prunable units, quantizable
layers), the configuration of a pruned student, the slicing of its weights, the kernels it runs
and the shapes calibration sweeps. ``compress``, ``hw_models`` and the CLI dispatch through the
family named in a configuration, so adding a family is its module, one ``register_family`` and its
entry in the conformance suite (``tests/models/test_family_conformance.py``), which every
registered family must pass.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from paretone._plain import from_plain
from paretone.audio import FrontEndConfig
from paretone.models._base import AudioModel
from paretone.models._kernels import Kernel, LayerKernel
from paretone.models._structure import ModelStructure

Elementwise = Callable[[str], torch.Tensor]  # state_dict key -> a tensor of that parameter's shape


@dataclass(frozen=True)
class SizeOption:
    """A size setting of a family's teacher, offered as ``paretone train --NAME``."""

    name: str  # the keyword of ``teacher_config`` and the CLI option (``--`` + name, _ as -)
    type: type  # int, float, or tuple for comma-separated whole numbers
    default: Any
    help: str


class Family(ABC):
    """One model family.

    Contract: stateless (one registered instance serves every thread and process); configurations
    are frozen dataclasses carrying ``family = <name>``; unit and layer names are module paths of
    the built model, so state_dict keys start with them. Methods raise ConfigError for
    configurations or unit names the family does not have, never a bare KeyError.
    """

    name: ClassVar[str]
    config_type: ClassVar[type]
    size_options: ClassVar[tuple[SizeOption, ...]] = ()
    small: ClassVar[dict[str, Any]] = {}  # sizes of a small instance (examples, conformance tests)
    can_stream: ClassVar[bool] = False  # ``streaming`` returns a chunk-by-chunk model

    @abstractmethod
    def teacher_config(self, *, num_classes: int, front_end: FrontEndConfig, **sizes: Any) -> Any:
        """A teacher configuration from the ``size_options`` (defaults for those not given)."""

    @abstractmethod
    def build(self, config: Any) -> AudioModel:
        """A randomly initialised model of ``config``."""

    @abstractmethod
    def structure(self, config: Any) -> ModelStructure:
        """Prunable units and quantizable layers of a model of ``config``, by name."""

    @abstractmethod
    def student_config(self, teacher: Any, *, kept: Mapping[str, int], front_end: FrontEndConfig) -> Any:
        """The architecture left when each unit keeps ``kept[unit]`` structures (all if absent)."""

    @abstractmethod
    def unit_scores(self, model: AudioModel, value: Elementwise) -> dict[str, torch.Tensor]:
        """Per unit, one score per structure: the sum of ``value(key)`` over every weight it owns
        (the contract of elementwise importance criteria such as magnitude and Taylor)."""

    @abstractmethod
    def slice(self, teacher: Any, student: Any, keep: Mapping[str, torch.Tensor], state: dict) -> None:
        """Cut ``state`` (the teacher's state_dict) down to ``student`` in place; ``keep[unit]``
        holds, per unit, the indices of the structures kept (per head for per-head channels)."""

    @abstractmethod
    def kernels(self, config: Any) -> list[LayerKernel]:
        """Every kernel of a model of ``config``, all float, each tagged with its layer."""

    @abstractmethod
    def calibration_kernels(self, teacher: Any) -> set[Kernel]:
        """Float kernels of every shape a student of ``teacher`` can have (its front-end as given);
        ``hw_models`` adds each quantizable kernel's formats and every front-end variant."""

    def streaming(self, model: AudioModel) -> torch.nn.Module | None:
        """The model as a stream of chunks with explicit state (see ``StreamingRecurrent``), or None
        when it cannot stream (it then runs on sliding windows of its clip length)."""
        return None

    def filter_banks(self, model: AudioModel) -> dict[str, torch.Tensor]:
        """Per conv-filter unit, the weights of its filters as (filters, components, in, kh, kw),
        for criteria that score whole filter banks (operator norm). Families without conv filters
        have none."""
        return {}

    def config_to_dict(self, config: Any) -> dict[str, Any]:
        return {"family": self.name, **dataclasses.asdict(config)}

    def config_from_dict(self, data: Mapping[str, Any]) -> Any:
        fields = {k: v for k, v in data.items() if k != "family"}
        return from_plain(self.config_type, fields, self.name)
