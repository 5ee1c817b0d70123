"""NDDR-CNN (Gao et al., 2019): neural discriminative dimensionality reduction between columns.

Each task owns a column of core blocks (like ``single_task``). After block ``d`` the columns'
features are concatenated along channels and every task gets its own 1x1 convolution
(``T*C -> C``), normalisation and ReLU (Gao et al., Sec. 3, Eq. 1-2)::

    z = concat_t(h_t)                       [B, T*C, *s]
    h'_t = relu(norm_t(W_t z))              W_t: [C, T*C] (a 1x1 conv), one per task

All tasks' 1x1 convolutions together are one ``[T*C, T*C]`` map (rows of task t are W_t), so
a depth is one einsum. The maps are architecture parameters (own optimiser group, no weight
decay, like cross-stitch's alpha); Gao et al. train them with a larger learning rate than the
columns, here ``arch_lr_multiplier`` times ``train.lr`` (default 1: the same rate).
Initialisation follows the paper's "diagonal" scheme: W_t is
``alpha_self * I`` on task t's own channels and ``(1 - alpha_self) / (T - 1) * I`` on each
other task's channels (0.9 / 0.1 for two tasks, scaled to T).

Normalisation. Stacking tasks along the batch axis and applying one BatchNorm would mix the
statistics of different tasks' features. Here the normalised tensor is ``[B, T*C, *s]``: each
channel belongs to exactly one task, so ``BatchNorm`` over it is per-task batch normalisation
(each task's channels get their own batch statistics and affine parameters), which is what the
paper's separate NDDR layers compute. For dense cores ``*s`` is empty (BatchNorm1d on
``[B, T*C]``).

Like cross-stitch, the scheme assumes one shared input for all tasks; when a subset of tasks is
asked for (evaluation, an alternating update), the first stacked input feeds every column.

Running statistics. The last NDDR layer's channels of task t are task t's (``parameter_owners``),
and so are their BatchNorm running mean and variance: an update of some tasks (alternating mode)
still runs every column and normalises every channel with its batch statistics, but afterwards
the running statistics of the other tasks' last-layer channels are put back, so they stay
bit-identical, as the paper's separate per-task NDDR layers would (measured before: one task-1
update moved task 0's running mean by up to 2.4e-2). Earlier layers feed every task, so every
update moves all their statistics, like shared weights. ``num_batches_tracked`` is one count per
layer and still counts every training batch; it only enters the update with ``momentum=None``,
and these layers use BatchNorm's default momentum 0.1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import torch
from torch import Tensor, nn

from sharewise.components.dropout import packed_dropout
from sharewise.components.layer_bank import LayerBank
from sharewise.components.usage import ParameterUse
from sharewise.errors import ConfigError
from sharewise.options import POSITIVE, PROBABILITY
from sharewise.sharing._registry import register_scheme
from sharewise.sharing.base import SharingScheme, task_list
from sharewise.sharing.core_spec import CoreSpec, column_layers
from sharewise.sharing.cross_stitch import all_columns_input


def nddr_init(n_tasks: int, channels: int, alpha_self: float) -> Tensor:
    """The diagonal initialisation ``[T*C, T*C]``: alpha * I on own channels, beta * I elsewhere."""
    beta = (1.0 - alpha_self) / (n_tasks - 1) if n_tasks > 1 else 0.0
    mix = torch.full((n_tasks, n_tasks), beta)
    mix.fill_diagonal_(alpha_self if n_tasks > 1 else 1.0)
    return torch.kron(mix, torch.eye(channels))  # [T*C, T*C]


class NDDR(SharingScheme):
    """Task t's column is layers ``t*D .. t*D+D-1``; ``weight[d]`` is depth d's ``[T*C, T*C]``."""

    mixes_tasks = True  # task i mixes every task's features
    reads_input_by_layers = True  # x goes only to the bank's layers (SharingScheme)

    def __init__(self, bank: LayerBank, n_tasks: int, depth: int, dropout: float,
                 channels: list[int], alpha_self: float = 0.9, arch_lr_multiplier: float = 1.0) -> None:
        super().__init__(n_tasks)
        if not 0.0 <= alpha_self <= 1.0:
            raise ConfigError(f"scheme_options.alpha_self: expected a value in [0, 1], got {alpha_self}")
        self.bank, self.depth, self.dropout = bank, depth, dropout
        self.arch_lr_multiplier = arch_lr_multiplier
        self.weight = nn.ParameterList([nn.Parameter(nddr_init(n_tasks, c, alpha_self)) for c in channels])
        self.norm = nn.ModuleList([nn.BatchNorm1d(n_tasks * c) for c in channels])

    def architecture_parameters(self) -> list[nn.Parameter]:
        """The NDDR mixing maps decide how tasks share, like cross-stitch's alpha: own group."""
        return list(self.weight)

    def export_task(self, task: int) -> nn.Module:
        """Every column stays (task t's NDDR layer reads all of them), fed the task's input as in
        evaluation; the NDDR layers keep their evaluation statistics."""
        import copy

        from sharewise.components.plain import Columns, NDDRMix

        columns = [[self.bank.export_layer(i * self.depth + d) for d in range(self.depth)] for i in range(self.n_tasks)]
        mixers = [NDDRMix(self.weight[d], copy.deepcopy(self.norm[d]).eval()) for d in range(self.depth)]
        return Columns(columns, mixers, task)

    def adopt_shared(self, parent_state: Mapping[str, Any], parent_structure: Mapping[str, Any],
                     attach: Sequence[str] | None) -> list[str]:
        from sharewise.errors import AdaptError

        raise AdaptError("nddr gives every task its own column of blocks and mixes all of them, so a new task "
                         "has no column of its own to train over frozen ones; adapt over a parallel, "
                         "soft_ordering, permuted, gumbel_matrix or branched run")

    def architecture_lr(self, lr: float) -> float:
        return lr * self.arch_lr_multiplier

    def parameter_owners(self) -> list[ParameterUse]:
        """The last NDDR layer's rows of W_t and its normalisation's channels of task t feed task
        t's output alone, so they are task t's (earlier depths feed every column, so every task)."""
        n, c = self.n_tasks, self.weight[-1].shape[0] // self.n_tasks
        owners = torch.arange(n).unsqueeze(1) == (torch.arange(n * c) // c).unsqueeze(0)  # [T, T*C]
        last = [self.weight[-1], *self.norm[-1].parameters()]
        return [ParameterUse(p, owners, 0) for p in last if p.requires_grad]

    def _mix(self, d: int, h: Tensor, others: Sequence[int] = ()) -> Tensor:
        """Depth ``d``'s NDDR layer on all columns ``h [T, B, C, *s]``; the running statistics of the
        channels of tasks ``others`` stay as they were (see the module docstring)."""
        t, b = h.shape[:2]
        c = h.shape[2]
        z = h.transpose(0, 1).reshape(b, t * c, -1)  # [B, T*C, S]
        y = torch.einsum("oi,bis->bos", self.weight[d], z)  # [B, T*C, S]
        y = _norm_keeping(self.norm[d], y if y.shape[-1] > 1 else y.squeeze(-1), others, c)  # [B, T*C(, S)]
        y = y.relu().reshape(b, t, *h.shape[2:])  # [B, T, C, *s]
        return y.transpose(0, 1)  # [T, B, C, *s]

    def forward(self, x: Tensor, tasks: Sequence[int] | None = None) -> Tensor:
        h = all_columns_input(x, tasks, self.n_tasks)  # [T, B, *f]
        asked = set(task_list(tasks, self.n_tasks))
        others = [i for i in range(self.n_tasks) if i not in asked]  # their last-layer statistics stay
        for d in range(self.depth):
            h = self.bank.forward_selected(h, column_layers(range(self.n_tasks), d, self.depth))
            h = packed_dropout(h, self.dropout, self.training)
            h = self._mix(d, h, others if d == self.depth - 1 else ())
        return h if tasks is None else h[task_list(tasks, self.n_tasks)]


def _norm_keeping(norm: nn.BatchNorm1d, y: Tensor, others: Sequence[int], channels: int) -> Tensor:
    """``norm(y)``, keeping the running statistics of the channels of tasks ``others`` (task i:
    channels ``i*channels .. (i+1)*channels - 1``) as they were. The output, and every other
    channel's new statistics, are those of ``norm(y)`` itself: the same call, bit for bit.

    The call runs on copies of the running buffers, whose updated slices of the moving tasks are
    then copied into the buffers: autograd keeps the buffers the call was given for its backward
    pass, so they must not be written after it (the original buffers stay the module's)."""
    if not others or not (norm.training and norm.track_running_stats):
        return norm(y)  # joint updates and evaluation: the plain call
    names = ("running_mean", "running_var")
    kept = {name: getattr(norm, name) for name in names}
    try:
        for name in names:
            setattr(norm, name, kept[name].clone())
        out = norm(y)
        updated = {name: getattr(norm, name) for name in names}
    finally:
        for name in names:
            setattr(norm, name, kept[name])
    moving = torch.ones(y.shape[1] // channels, dtype=torch.bool, device=y.device)
    moving[list(others)] = False
    moving = moving.repeat_interleave(channels)  # [T*C]: the channels whose statistics move
    with torch.no_grad():
        for name in names:
            kept[name].copy_(torch.where(moving, updated[name], kept[name]))
    return out


def _channels_per_depth(core: CoreSpec, bank: LayerBank) -> list[int]:
    """Channel count after each block (axis 0 of a sample's feature shape), from a probe of column 0."""
    probe = torch.zeros(2, *core.feature_shape)
    out = []
    with torch.no_grad():
        for d in range(core.depth):
            probe = bank.forward_one(d, probe)
            out.append(int(probe.shape[1]))
    return out


@register_scheme("nddr")
def build_nddr(core: CoreSpec, n_tasks: int, *, seed: int = 0, alpha_self: Annotated[float, PROBABILITY] = 0.9,
               arch_lr_multiplier: Annotated[float, POSITIVE] = 1.0) -> NDDR:
    """Per-task columns + per-task 1x1 conv / BatchNorm / ReLU on the concatenation (Gao et al.)."""
    bank = core.make_bank(core.depth * n_tasks)
    return NDDR(bank, n_tasks, core.depth, core.dropout, _channels_per_depth(core, bank), alpha_self,
                arch_lr_multiplier)
