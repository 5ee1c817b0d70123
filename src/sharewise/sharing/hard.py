"""Fixed (hard) sharing: single-task copies and parallel ordering (Eq. 2)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from sharewise.components.dropout import packed_dropout
from sharewise.components.layer_bank import LayerBank
from sharewise.components.usage import ParameterUse
from sharewise.sharing._registry import register_scheme
from sharewise.sharing.base import SharingScheme, task_list
from sharewise.sharing.core_spec import CoreSpec, column_layers, column_owner


class Parallel(SharingScheme):
    """Eq. 2: every task applies W_1..W_D in the same order (hard parameter sharing).

    All tasks run as one stacked batch: each depth is one layer call on ``[T'*B, *f]``.
    """

    reads_input_by_layers = True  # x goes only to the bank's layers (SharingScheme)

    def __init__(self, bank: LayerBank, n_tasks: int, depth: int, dropout: float) -> None:
        super().__init__(n_tasks)
        self.bank, self.depth, self.dropout = bank, depth, dropout

    def forward(self, x: Tensor, tasks: Sequence[int] | None = None) -> Tensor:
        t, b = x.shape[:2]
        y = x.reshape(t * b, *x.shape[2:])  # [T'*B, *f]
        y = self.bank.forward_chain(y, range(self.depth), self.dropout, self.training)
        return y.view(t, b, *y.shape[1:])

    def export_task(self, task: int) -> nn.Module:
        """Every task's chain is W_1..W_D."""
        return nn.Sequential(*[self.bank.export_layer(k) for k in range(self.depth)])


class SingleTask(SharingScheme):
    """The single-task baseline with the same architecture: task t owns layers t*D .. t*D+D-1.

    Tasks still run stacked (one batched product per depth for dense layers), but nothing is
    shared, so this equals training T separate networks with the summed loss.
    """

    reads_input_by_layers = True  # x goes only to the bank's layers (SharingScheme)

    def __init__(self, bank: LayerBank, n_tasks: int, depth: int, dropout: float) -> None:
        super().__init__(n_tasks)
        self.bank, self.depth, self.dropout = bank, depth, dropout

    def forward(self, x: Tensor, tasks: Sequence[int] | None = None) -> Tensor:
        ids = task_list(tasks, self.n_tasks)
        y = x
        for k in range(self.depth):
            y = self.bank.forward_selected(y, column_layers(ids, k, self.depth))
            y = packed_dropout(y, self.dropout, self.training)
        return y

    def export_task(self, task: int) -> nn.Module:
        """Task t's own copy: layers t*D .. t*D+D-1."""
        return nn.Sequential(*[self.bank.export_layer(task * self.depth + k) for k in range(self.depth)])

    def adopt_shared(self, parent_state: Mapping[str, Any], parent_structure: Mapping[str, Any],
                     attach: Sequence[str] | None) -> list[str]:
        from sharewise.errors import AdaptError

        raise AdaptError("single_task shares nothing: every core layer belongs to one of the parent's tasks, so "
                         "there are no shared blocks to adapt new tasks over; train them from scratch, or adapt over "
                         "a parallel, soft_ordering, permuted, gumbel_matrix or branched run")

    def parameter_users(self, tasks: Sequence[int] | None = None) -> list[ParameterUse]:
        """Task t uses only its own copy: layers t*D .. t*D+D-1."""
        ids = torch.tensor(task_list(tasks, self.n_tasks))
        owner = column_owner(torch.arange(self.bank.n_layers), self.depth)  # [L]: the task owning layer j
        return self.bank.layer_uses(ids.unsqueeze(1) == owner.unsqueeze(0))  # [T', L]

    def parameter_owners(self) -> list[ParameterUse]:
        """Task t owns its copy: another task's update leaves it and its optimiser state alone."""
        return self.parameter_users(None)


@register_scheme("parallel")
def build_parallel(core: CoreSpec, n_tasks: int, *, seed: int = 0) -> Parallel:
    """Eq. 2 hard sharing ("shared bottom" for the core)."""
    return Parallel(core.make_bank(core.depth), n_tasks, core.depth, core.dropout)


@register_scheme("single_task")
def build_single_task(core: CoreSpec, n_tasks: int, *, seed: int = 0) -> SingleTask:
    """Every task has its own copy of the core (the STL baseline, same architecture)."""
    return SingleTask(core.make_bank(core.depth * n_tasks), n_tasks, core.depth, core.dropout)
