"""Importance criteria: how much each prunable structure matters, so pruning keeps the best.

An ``Importance`` scores every unit's structures (a head, a channel of every head, an FFN hidden
unit, a conv filter) of a model. Elementwise criteria sum one quantity over every weight a
structure owns, through the family (``Family.unit_scores``):
- ``magnitude``: squared weights, i.e. the structure's squared L2 norm across all its matrices;
- ``taylor``: (sum of weight x gradient)^2 per batch, summed over batches: the first-order estimate
  of the loss change when the structure is removed (Molchanov et al., 2019); the loss is the task's.
Filter-bank criteria score whole convolution filters from their weights (``Family.filter_banks``):
- ``operator_norm``: projections onto each input channel's centred rank-1 direction (below).
Adding a criterion is one subclass and one ``register_importance``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch

from paretone._registry import Registry
from paretone.audio import WaveformSet
from paretone.errors import ConfigError
from paretone.models import CONV_FILTERS, QUATERNION_FILTERS, AudioModel, ModelStructure, family_of
from paretone.tasks import Task


class Importance(ABC):
    """Contract: ``scores`` returns, for every prunable unit of the model, a tensor of one score per
    structure ((size,), or (heads, channels) for per-head channels); larger means more important.
    It must not change the model (weights, gradients, train/eval mode). ``needs_data`` criteria get a
    few training batches and the task; others get ``data=None``."""

    name: ClassVar[str]
    needs_data: ClassVar[bool] = False

    def check(self, structure: ModelStructure, pruned: set[str]) -> None:  # noqa: B027  (most fit every model)
        """ConfigError if the criterion cannot score the ``pruned`` units of this structure."""

    @abstractmethod
    def scores(self, model: AudioModel, data: WaveformSet | None, task: Task) -> dict[str, torch.Tensor]: ...


IMPORTANCE: Registry[Importance] = Registry("importance criterion")


def register_importance(criterion: Importance) -> Importance:
    return IMPORTANCE.register(criterion.name, criterion)


def importance_named(name: str) -> Importance:
    return IMPORTANCE.named(name)


class Magnitude(Importance):
    name = "magnitude"

    @torch.no_grad()
    def scores(self, model: AudioModel, data: WaveformSet | None, task: Task) -> dict[str, torch.Tensor]:
        params = dict(model.named_parameters())
        return family_of(model.config).unit_scores(model, lambda key: params[key].detach() ** 2)


class Taylor(Importance):
    name = "taylor"
    needs_data = True

    def __init__(self, batches: int = 8, batch_size: int = 32) -> None:
        self.batches, self.batch_size = batches, batch_size

    def scores(self, model: AudioModel, data: WaveformSet | None, task: Task) -> dict[str, torch.Tensor]:
        if data is None or len(data) == 0:
            raise ValueError("the taylor criterion needs a few batches of training data")
        family = family_of(model.config)
        params = dict(model.named_parameters())
        was_training = model.training
        model.eval()  # no dropout, BatchNorm statistics untouched
        total: dict[str, torch.Tensor] = {}
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
        for batch in order[: self.batches * self.batch_size].split(self.batch_size):
            model.zero_grad(set_to_none=True)
            task.loss(model(data.waveforms[batch]), data.targets[batch]).backward()
            with torch.no_grad():
                contribution = family.unit_scores(model, lambda key: params[key] * params[key].grad)
            for name, score in contribution.items():
                total[name] = total.get(name, 0) + score**2
        model.zero_grad(set_to_none=True)
        model.train(was_training)
        return total


class OperatorNorm(Importance):
    """Passive (weights only) scoring of convolution filters (Singh, Abrol and Plumbley).

    For each input channel (and each quaternion component), the filters' kernels form a bank; its
    centred rank-1 direction is the dominant operator, and a filter's score is the squared sum of
    its projections onto those directions, averaged over components: filters that carry little of
    the layer's dominant operators score low and are pruned first. A quaternion filter is scored
    over its four components and pruned as a whole.
    """

    name = "operator_norm"
    kinds = frozenset({CONV_FILTERS, QUATERNION_FILTERS})

    def check(self, structure: ModelStructure, pruned: set[str]) -> None:
        other = [u.name for u in structure.prunable if u.name in pruned and u.kind not in self.kinds]
        if other:
            raise ConfigError(
                f"importance operator_norm scores convolution filters; {other[0]} is not one: "
                "use magnitude or taylor for it"
            )

    @torch.no_grad()
    def scores(self, model: AudioModel, data: WaveformSet | None, task: Task) -> dict[str, torch.Tensor]:
        scores = MAGNITUDE.scores(model, data, task)  # units it does not score are kept whole anyway
        for unit, bank in family_of(model.config).filter_banks(model).items():
            scores[unit] = operator_norm_scores(bank.detach())
        return scores


def operator_norm_scores(bank: torch.Tensor) -> torch.Tensor:
    """(filters, components, inputs, kh, kw) -> (filters,): squared projections onto each input
    channel's centred rank-1 direction, summed over inputs, averaged over components."""
    filters, components, inputs = bank.shape[:3]
    kernels = bank.reshape(filters, components * inputs, -1).transpose(0, 1)  # (banks, filters, kh*kw)
    centred = kernels - kernels.mean(dim=1, keepdim=True)
    _, _, directions = torch.linalg.svd(centred.double(), full_matrices=False)
    projections = (centred.double() @ directions[:, 0, :].unsqueeze(-1)).squeeze(-1)  # (banks, filters)
    return (projections**2).sum(0).float() / components


MAGNITUDE = register_importance(Magnitude())
TAYLOR = register_importance(Taylor())
OPERATOR_NORM = register_importance(OperatorNorm())
