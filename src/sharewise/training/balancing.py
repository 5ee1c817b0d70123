"""Balancing tasks: the trainer's one hook for loss weighting and gradient aggregation.

``train.weighting`` (:mod:`sharewise.training.weighting`) scales each task's loss;
``train.aggregator`` (:mod:`sharewise.training.aggregation`) combines per-task gradients with a
TorchJD aggregator, over all tasks or, with ``train.structure_aware``, over the tasks that use
each parameter block. The default (``equal``, no aggregator) builds no balancer at all, so the
trainer's summed-loss step is untouched (bit-identical, same speed).

Two paths:

- *loss path* (equal / uncertainty / dwa, no aggregator): one backward pass of ``sum_t w_t L_t``
  (+ the scheme's regulariser), through DistributedDataParallel as usual.
- *per-task path* (an aggregator, or GradNorm): the per-task gradient matrix ``G [T', N]``; with
  several data-parallel ranks it is averaged over ranks *before* aggregation (an aggregator is
  not linear, so averaging the aggregated updates would not equal one process on the global
  batch), which is why this path does not use DDP's reducer. Every rank then aggregates the same
  matrix and applies the same update.

The weighting sees the per-task losses averaged over ranks, so its state (windows, initial
losses, log-variance gradients) is the same on every rank. State for exact resume:
:meth:`Balancer.state_dict` (the trainer stores it in the checkpoint); the weighting's own
parameters are in the optimiser's ``loss_weights`` group. TorchJD aggregators that keep state
between steps in plain attributes (GradVac, NashMTL, PCD, ExcessMTL) restart it on resume.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as torch_dist
from torch import Tensor, nn

from sharewise.config.schema import TrainConfig
from sharewise.model import MultiTaskModel
from sharewise.sharing.base import task_list
from sharewise.training.aggregation import SUMMING, _key, build_aggregator, combine, task_gradients
from sharewise.training.distributed import DistContext
from sharewise.training.weighting import LossWeighting, build_weighting


def _mean_over_ranks(t: Tensor, dist: DistContext) -> Tensor:
    if not dist.enabled:
        return t
    t = t.clone()
    torch_dist.all_reduce(t)
    return t / dist.world


class Balancer:
    """Weighting plus optional aggregation for one model; see the module docstring."""

    def __init__(self, model: MultiTaskModel, weighting: LossWeighting, aggregator: Any | None,
                 aggregator_name: str | None, structure_aware: bool, dist: DistContext) -> None:
        self.model, self.weighting, self.aggregator, self.dist = model, weighting, aggregator, dist
        self.structure_aware = structure_aware
        self.summing = aggregator_name is not None and _key(aggregator_name) in SUMMING
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.sizes = [p.numel() for p in self.params]
        arch = {id(p) for p in model.architecture_parameters()}
        shared = {id(p) for p in model.scheme.parameters() if id(p) not in arch}
        self.shared = torch.cat([torch.full((n,), id(p) in shared, dtype=torch.bool)
                                 for p, n in zip(self.params, self.sizes)]).to(self._device)  # [N]
        self.per_task = aggregator is not None or weighting.needs_task_gradients

    @property
    def _device(self) -> torch.device:
        return self.params[0].device if self.params else torch.device("cpu")

    def parameters(self) -> list[nn.Parameter]:
        """The weighting's own parameters (the ``loss_weights`` optimiser group)."""
        return list(self.weighting.parameters())

    def task_stacked_parameters(self) -> list[nn.Parameter]:
        """Those of ``parameters()`` whose entry t is task t's (per-task optimiser state)."""
        return self.weighting.task_stacked_parameters()

    def _users(self, tasks: Sequence[int] | None, n: int) -> Tensor:
        """[T', N] bool: which stacked task uses which element (structure-aware aggregation)."""
        masks = {id(u.param): u.mask() for u in self.model.parameter_users(tasks)}
        return torch.cat([masks[id(p)].reshape(n, -1) if id(p) in masks
                          else torch.ones(n, p.numel(), dtype=torch.bool)
                          for p in self.params], dim=1).to(self._device)

    def backward(self, losses: Tensor, regularizer: Tensor | None, tasks: Sequence[int] | None) -> None:
        """Set every parameter's ``.grad`` for this step (the trainer zeroed them before)."""
        ids = task_list(tasks, self.weighting.n_tasks)
        seen = _mean_over_ranks(losses.detach(), self.dist)  # [T'] the same on every rank
        w = self.weighting.weights(seen, ids).to(losses.dtype)  # [T']
        self.weighting.own_backward(seen, ids)
        if not self.per_task:
            total = (losses * w).sum()
            (total if regularizer is None else total + regularizer).backward()
        else:
            G, R, used = task_gradients(losses, self.params, regularizer)  # [T', N], [N]
            G = _mean_over_ranks(G, self.dist)
            if self.weighting.needs_task_gradients:
                self.weighting.observe_gradients(G[:, self.shared].norm(dim=1), seen, ids)
            users = self._users(tasks, len(ids)) if self.structure_aware and self.aggregator is not None else None
            update = combine(G * w.unsqueeze(1), users, self.aggregator, self.summing, self.shared)  # [N]
            if R is not None:
                update = update + _mean_over_ranks(R, self.dist)
            for p, g, is_used in zip(self.params, update.split(self.sizes), used):
                p.grad = g.view_as(p).clone() if is_used else None
        self.weighting.observe(seen, ids)

    def step_metrics(self) -> dict[str, float]:
        return self.weighting.step_metrics()

    def state_dict(self) -> dict[str, Any]:
        agg = self.aggregator.state_dict() if isinstance(self.aggregator, nn.Module) else {}
        return {"weighting": self.weighting.state_dict(), "aggregator": agg}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.weighting.load_state_dict(state["weighting"])
        if isinstance(self.aggregator, nn.Module) and state.get("aggregator"):
            self.aggregator.load_state_dict(state["aggregator"])


def build_balancer(train: TrainConfig, model: MultiTaskModel, kinds: Sequence[str],
                   dist: DistContext) -> Balancer | None:
    """None for the default (equal weighting, no aggregator): the trainer's own summed loss."""
    if train.weighting == "equal" and train.aggregator is None and not train.weighting_options:
        return None
    weighting = build_weighting(train.weighting, kinds, train.weighting_options)
    device = next(iter(model.parameters()), torch.empty(0)).device
    weighting.to(device)
    aggregator = None
    if train.aggregator is not None:
        aggregator = build_aggregator(train.aggregator, train.aggregator_options)
    return Balancer(model, weighting, aggregator, train.aggregator, train.structure_aware, dist)
