"""Permuted ordering (Eq. 3): a fixed, per-task permutation of the shared layers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from sharewise.components.dropout import packed_dropout
from sharewise.components.layer_bank import LayerBank
from sharewise.sharing._registry import register_scheme
from sharewise.sharing.base import SharingScheme, task_list
from sharewise.sharing.core_spec import CoreSpec, check_reorderable


class Permuted(SharingScheme):
    """Task t applies ``W_{rho_t(1)}, ..., W_{rho_t(D)}``; rho is fixed before training.

    ``permutations[t, k]`` is the layer task t uses at depth k. At each depth the bank evaluates
    all tasks in one call (a batched product for dense layers, one call per layer otherwise).
    """

    def __init__(self, bank: LayerBank, n_tasks: int, depth: int, dropout: float,
                 permutations: Tensor) -> None:
        super().__init__(n_tasks)
        if tuple(permutations.shape) != (n_tasks, depth):
            raise ValueError(f"expected permutations of shape [{n_tasks}, {depth}], got {list(permutations.shape)}")
        self.bank, self.depth, self.dropout = bank, depth, dropout
        self.register_buffer("permutations", permutations.long())
        self._orders = permutations.tolist()  # python copy: no device sync in forward

    def forward(self, x: Tensor, tasks: Sequence[int] | None = None) -> Tensor:
        ids = task_list(tasks, self.n_tasks)
        y = x
        for k in range(self.depth):
            y = self.bank.forward_selected(y, [self._orders[t][k] for t in ids])
            y = packed_dropout(y, self.dropout, self.training)
        return y

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._orders = self.permutations.tolist()

    def learned_structure(self) -> dict[str, Any]:
        return {"permutations": self.permutations.tolist()}


@register_scheme("permuted")
def build_permuted(core: CoreSpec, n_tasks: int, *, seed: int = 0) -> Permuted:
    """Permutations drawn from the run's seed (paper: a new random order per task per trial)."""
    bank = core.make_bank(core.depth)
    check_reorderable(bank, core.feature_shape, core.depth, "permuted")
    gen = torch.Generator().manual_seed(seed + 7919)
    perms = torch.stack([torch.randperm(core.depth, generator=gen) for _ in range(n_tasks)])
    return Permuted(bank, n_tasks, core.depth, core.dropout, perms)
