"""Permuted ordering (Eq. 3): a fixed, per-task permutation of the shared layers.

Tasks get *different* orders: the T orders are drawn without replacement from the D! orders
(seeded), and only once all D! are used does any order repeat (T > D!). With T = 2 and D = 2
this gives Eq. 4's two orders, W2∘W1 for one task and W1∘W2 for the other. Drawing each task's
order independently (the earlier rule) gave both tasks the same order about half the time, which
silently turned "permuted" into parallel ordering. ``scheme_options.orders`` fixes the orders.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from sharewise.components.dropout import packed_dropout
from sharewise.components.layer_bank import LayerBank
from sharewise.errors import ConfigError
from sharewise.sharing._registry import register_scheme
from sharewise.sharing.base import SharingScheme, task_list
from sharewise.sharing.core_spec import CoreSpec, check_reorderable


class Permuted(SharingScheme):
    """Task t applies ``W_{rho_t(1)}, ..., W_{rho_t(D)}``; rho is fixed before training.

    ``permutations[t, k]`` is the layer task t uses at depth k. At each depth the bank evaluates
    all tasks in one call (a batched product for dense layers, one call per layer otherwise).
    """

    reads_input_by_layers = True  # x goes only to the bank's layers (SharingScheme)

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

    def export_task(self, task: int) -> nn.Module:
        """Task t's fixed chain ``W_{rho_t(1)}, ..., W_{rho_t(D)}``."""
        return nn.Sequential(*[self.bank.export_layer(self._orders[task][k]) for k in range(self.depth)])

    def task_state_names(self) -> set[str]:
        return {"permutations"}  # new tasks draw their own orders of the frozen layers

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._orders = self.permutations.tolist()

    def learned_structure(self) -> dict[str, Any]:
        return {"permutations": self.permutations.tolist()}


_ENUMERATE_UP_TO = 5040  # D <= 7: list all D! orders and shuffle them


def distinct_orders(n_tasks: int, depth: int, generator: torch.Generator) -> Tensor:
    """``[T, D]``: T orders of ``range(D)``, all different while T <= D!.

    Drawn without replacement from the D! permutations; when T > D! the tasks take whole rounds
    of all D! permutations (each round freshly shuffled), so every order is used before any
    repeats. Small D lists the orders and shuffles them; larger D (D! > 5040, so T <= D! in
    practice) draws random permutations and rejects repeats.
    """
    n_orders = math.factorial(depth)
    if n_orders <= _ENUMERATE_UP_TO:
        every = torch.tensor(list(itertools.permutations(range(depth))), dtype=torch.long)  # [D!, D]
        rounds = [every[torch.randperm(n_orders, generator=generator)] for _ in range(-(-n_tasks // n_orders))]
        return torch.cat(rounds)[:n_tasks]
    seen: set[tuple[int, ...]] = set()
    rows: list[Tensor] = []
    while len(rows) < n_tasks:
        perm = torch.randperm(depth, generator=generator)
        key = tuple(perm.tolist())
        if key not in seen:
            seen.add(key)
            rows.append(perm)
    return torch.stack(rows)


def check_orders(orders: Any, n_tasks: int, depth: int) -> Tensor:
    """``scheme_options.orders`` as a ``[T, D]`` tensor; ConfigError naming the first bad row."""
    if not isinstance(orders, (list, tuple)) or len(orders) != n_tasks:
        got = f"{len(orders)} rows" if isinstance(orders, (list, tuple)) else repr(orders)
        raise ConfigError(
            f"scheme_options.orders must be a list of {n_tasks} rows (one order per task), each a "
            f"permutation of 0..{depth - 1}, but got {got}."
        )
    for t, row in enumerate(orders):
        ok = isinstance(row, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in row)
        if not ok or sorted(row) != list(range(depth)):
            raise ConfigError(
                f"scheme_options.orders row {t} (task {t}) must be a permutation of 0..{depth - 1} "
                f"(each core layer once), but got {row!r}."
            )
    return torch.tensor([list(r) for r in orders], dtype=torch.long)


def _check_orders_option(options: dict[str, Any], cfg: Any, given: dict[str, Any]) -> list[str]:
    """Validate-time check of ``orders`` (each row a permutation of the core's depths)."""
    orders = options.get("orders")
    if orders is None or not hasattr(cfg.model.core, "depth"):
        return []
    try:
        check_orders(orders, len(orders), int(cfg.model.core.depth))
    except ConfigError as err:
        return [f"scheme_options.orders: {err}"]
    return []


@register_scheme("permuted", check=_check_orders_option)
def build_permuted(core: CoreSpec, n_tasks: int, *, seed: int = 0,
                   orders: list[list[int]] | None = None) -> Permuted:
    """Distinct per-task orders drawn from the run's seed (paper: a new random order per task per
    trial), or the given ``orders`` (``[T][D]``: the layer task t uses at depth k)."""
    if orders is not None:
        perms = check_orders(orders, n_tasks, core.depth)
    else:
        perms = distinct_orders(n_tasks, core.depth, torch.Generator().manual_seed(seed + 7919))
    bank = core.make_bank(core.depth)
    check_reorderable(bank, core.feature_shape, core.depth, "permuted")
    return Permuted(bank, n_tasks, core.depth, core.dropout, perms)
