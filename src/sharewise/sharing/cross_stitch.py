"""Cross-stitch networks (Misra et al., 2016): per-task columns mixed after every block.

Each task owns a full column of core blocks (like ``single_task``). After block ``d`` the
columns' outputs are mixed by a learned ``T x T`` cross-stitch unit (Misra et al., Eq. 1)::

    x'_i = sum_j alpha_d[i, j] x_j        (per depth d; [T, B, *f] -> [T, B, *f])

initialised to ``alpha_self`` on the diagonal and ``(1 - alpha_self) / (T - 1)`` elsewhere
(the paper's 0.9 / 0.1 for two tasks, "scaled to T": each row sums to 1). The units are
architecture parameters in their own optimiser group; Misra et al. raise their learning rate
(10^2-10^3 times, with SGD); ``arch_lr_multiplier`` (default 10, we train with Adam) does that
through ``sharewise.training.optim``.

Every column needs every task's features, so the scheme assumes one shared input for all tasks
(as cross-stitch networks do). When only some tasks are asked for (evaluation), the first
stacked input is fed to all columns and the requested rows are returned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import torch
from torch import Tensor, nn

from sharewise.components.dropout import packed_dropout
from sharewise.components.layer_bank import LayerBank
from sharewise.errors import ConfigError
from sharewise.options import POSITIVE, PROBABILITY
from sharewise.sharing._registry import register_scheme
from sharewise.sharing.base import SharingScheme, task_list
from sharewise.sharing.core_spec import CoreSpec, column_layers


def all_columns_input(x: Tensor, tasks: Sequence[int] | None, n_tasks: int) -> Tensor:
    """[T', B, *f] -> [T, B, *f]: all tasks' inputs (the shared input when a subset is given)."""
    if tasks is None:
        return x
    return x[:1].expand(n_tasks, *x.shape[1:])


class CrossStitch(SharingScheme):
    """Task t's column is layers ``t*D .. t*D+D-1`` of the bank; ``alpha[d]`` is depth d's ``[T, T]``.

    The units are one parameter per depth because the last one's row t feeds task t's output
    alone (it is task t's: ``task_stacked_parameters``, so another task's update leaves it and its
    optimiser state alone), while every earlier unit feeds every column. States saved with one
    ``alpha [D, T, T]`` still load (``_split_alpha``)."""

    mixes_tasks = True  # task i mixes every task's features
    reads_input_by_layers = True  # x goes only to the bank's layers (SharingScheme)

    def __init__(self, bank: LayerBank, n_tasks: int, depth: int, dropout: float,
                 alpha_self: float = 0.9, arch_lr_multiplier: float = 10.0) -> None:
        super().__init__(n_tasks)
        if not 0.0 <= alpha_self <= 1.0:
            raise ConfigError(f"scheme_options.alpha_self: expected a value in [0, 1], got {alpha_self}")
        self.bank, self.depth, self.dropout = bank, depth, dropout
        self.arch_lr_multiplier = arch_lr_multiplier
        off = (1.0 - alpha_self) / (n_tasks - 1) if n_tasks > 1 else 0.0
        init = torch.full((n_tasks, n_tasks), off)
        init.fill_diagonal_(alpha_self if n_tasks > 1 else 1.0)
        self.alpha = nn.ParameterList([nn.Parameter(init.clone()) for _ in range(depth)])  # D x [T, T]
        self._register_load_state_dict_pre_hook(_split_alpha)

    def forward(self, x: Tensor, tasks: Sequence[int] | None = None) -> Tensor:
        h = all_columns_input(x, tasks, self.n_tasks)  # [T, B, *f]
        for d in range(self.depth):
            h = self.bank.forward_selected(h, column_layers(range(self.n_tasks), d, self.depth))
            h = packed_dropout(h, self.dropout, self.training)
            t, b = h.shape[:2]
            mixed = self.alpha[d] @ h.reshape(t, -1)  # [T, T] @ [T, B*f] -> [T, B*f]
            h = mixed.view(h.shape)  # [T, B, *f]
        ids = task_list(tasks, self.n_tasks)
        return h if tasks is None else h[ids]

    def export_task(self, task: int) -> nn.Module:
        """Every column stays (task t mixes all of them after every block), fed the task's input
        as in evaluation; the cross-stitch units are fixed."""
        from sharewise.components.plain import Columns, LinearMix

        columns = [[self.bank.export_layer(i * self.depth + d) for d in range(self.depth)] for i in range(self.n_tasks)]
        return Columns(columns, [LinearMix(self.alpha[d]) for d in range(self.depth)], task)

    def adopt_shared(self, parent_state: Mapping[str, Any], parent_structure: Mapping[str, Any],
                     attach: Sequence[str] | None) -> list[str]:
        from sharewise.errors import AdaptError

        raise AdaptError("cross_stitch gives every task its own column of blocks and mixes all of them, so a "
                         "new task has no column of its own to train over frozen ones; adapt over a parallel, "
                         "soft_ordering, permuted, gumbel_matrix or branched run")

    def architecture_parameters(self) -> list[nn.Parameter]:
        return list(self.alpha)

    def task_stacked_parameters(self) -> list[nn.Parameter]:
        return [self.alpha[-1]]  # row t mixes the columns into task t's output only

    def architecture_lr(self, lr: float) -> float:
        return lr * self.arch_lr_multiplier

    def learned_structure(self) -> dict[str, Any]:
        return {"alpha": [a.detach().cpu().tolist() for a in self.alpha]}


def _split_alpha(state: dict[str, Any], prefix: str, *_: Any) -> None:
    """A state saved with one ``alpha [D, T, T]`` -> ``alpha.0 .. alpha.{D-1}`` (in place)."""
    old = state.pop(prefix + "alpha", None)
    if old is not None:
        for d in range(old.shape[0]):
            state[f"{prefix}alpha.{d}"] = old[d]


@register_scheme("cross_stitch")
def build_cross_stitch(core: CoreSpec, n_tasks: int, *, seed: int = 0,
                       alpha_self: Annotated[float, PROBABILITY] = 0.9,
                       arch_lr_multiplier: Annotated[float, POSITIVE] = 10.0) -> CrossStitch:
    """Per-task columns + T x T cross-stitch units after every block (Misra et al., 2016)."""
    return CrossStitch(core.make_bank(core.depth * n_tasks), n_tasks, core.depth, core.dropout,
                       alpha_self, arch_lr_multiplier)
