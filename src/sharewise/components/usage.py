"""Which tasks use which parameters in a step: the data structure-aware gradient aggregation reads.

A :class:`ParameterUse` says, for one parameter, which of the stacked tasks of the latest
forward pass used which of its *blocks*. A block is a slice along one axis (``dim``): one layer
of a :class:`~sharewise.components.layer_bank.DenseLayerBank` (all layers live in one tensor
``[in, L, out]``, so a parameter is not the unit of sharing), one task's row of a stacked encoder
or head, one task's row of allocation logits. ``dim=None`` means the whole tensor is one block.

Definition ("task t uses block k in this step"): task t's loss depends on block k through the
forward pass just run, so that ``d L_t / d block_k`` may be non-zero. A block nobody declares is
used by every task of the step (the assumption of classic aggregators). The declarations are
structural (which layer copy, which component under the sampled allocation), never read off the
gradients, so a dead ReLU does not change them; a test checks on every scheme that a task's
gradient is zero wherever it is declared a non-user.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class ParameterUse:
    """``users [T', n_blocks]`` (bool): stacked task i uses block k of ``param`` (blocks along ``dim``)."""

    param: nn.Parameter
    users: Tensor
    dim: int | None = None

    def mask(self) -> Tensor:
        """``[T', *param.shape]`` bool: the users of every element."""
        n = self.users.shape[0]
        shape = [n] + [1] * self.param.dim()
        if self.dim is not None:
            shape[self.dim + 1] = self.users.shape[1]
        return self.users.bool().reshape(shape).expand(n, *self.param.shape)


def used_by_all(params: Iterable[nn.Parameter], n_tasks: int) -> list[ParameterUse]:
    """Every trainable parameter in ``params`` used by all ``n_tasks`` stacked tasks."""
    return [ParameterUse(p, torch.ones(n_tasks, 1, dtype=torch.bool)) for p in params if p.requires_grad]


def task_rows(param: nn.Parameter, ids: Sequence[int], dim: int = 0) -> ParameterUse:
    """A parameter stacked over the model's tasks along ``dim``: stacked task i uses row ``ids[i]``."""
    n_rows = param.shape[dim]
    users = torch.zeros(len(ids), n_rows, dtype=torch.bool)
    users[torch.arange(len(ids)), torch.tensor(list(ids), dtype=torch.long)] = True
    return ParameterUse(param, users, dim)


def with_rest_used_by_all(module: nn.Module, declared: list[ParameterUse], n_tasks: int) -> list[ParameterUse]:
    """``declared`` plus every other trainable parameter of ``module`` used by all tasks."""
    seen = {id(u.param) for u in declared}
    return declared + used_by_all((p for p in module.parameters() if id(p) not in seen), n_tasks)
