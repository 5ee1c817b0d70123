"""Task-specific encoders E_t and decoders D_t, stacked over tasks.

Tasks often differ in input width (UCI) or output width (classes). Rather than loop over tasks,
inputs are zero-padded to the widest task and weights stored as ``[T, in_max, out]``: padded
input columns are zero, so they contribute nothing and their weights get no gradient, which
makes the stacked product exactly equal to T separate layers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sharewise.components import gemm
from sharewise.components.layer_bank import activation_fn
from sharewise.components.usage import ParameterUse, task_rows, used_by_all


class StackedDense(nn.Module):
    """T affine maps ``in_t -> out`` (+ activation) evaluated with one batched product.

    ``frozen=True`` keeps the weights fixed at their random initialisation (the MNIST-pairs
    experiment's random frozen ReLU encoders, Sec. 4.1). ``shared=True`` uses one map for every
    task (the random-pattern experiment's shared output layer O, Sec. 3.2).
    """

    def __init__(self, in_dims: Sequence[int], out_dim: int, activation: str = "linear",
                 frozen: bool = False, shared: bool = False) -> None:
        super().__init__()
        self.in_dims = list(in_dims)
        self.in_max, self.out_dim, self.shared = max(self.in_dims), out_dim, shared
        self.activation_name = activation
        self._act = activation_fn(activation)
        n = 1 if shared else len(self.in_dims)
        weight = torch.empty(n, self.in_max, out_dim)
        for i in range(n):
            fan_in = self.in_dims[i]
            bound = math.sqrt(6.0 / (fan_in + out_dim))  # Glorot-uniform, Keras' default
            weight[i].uniform_(-bound, bound)
            weight[i, fan_in:] = 0.0
        bias = torch.zeros(n, 1, out_dim)
        if frozen:
            self.register_buffer("weight", weight)
            self.register_buffer("bias", bias)
        else:
            self.weight = nn.Parameter(weight)
            self.bias = nn.Parameter(bias)
        self._index_cache: dict[tuple[int, ...], Tensor] = {}

    def _select(self, tasks: Sequence[int] | None) -> tuple[Tensor, Tensor]:
        if self.shared or tasks is None:
            return self.weight, self.bias
        key = tuple(int(t) for t in tasks)
        idx = self._index_cache.get(key)
        if idx is None or idx.device != self.weight.device:
            idx = self._index_cache[key] = torch.tensor(key, device=self.weight.device)
        return self.weight.index_select(0, idx), self.bias.index_select(0, idx)

    def parameter_users(self, tasks: Sequence[int] | None = None) -> list[ParameterUse]:
        """Task t uses row t of the stacked weights (all of one shared map)."""
        ids = list(range(len(self.in_dims))) if tasks is None else [int(t) for t in tasks]
        if self.shared or not isinstance(self.weight, nn.Parameter):
            return used_by_all(self.parameters(), len(ids))
        return [task_rows(self.weight, ids), task_rows(self.bias, ids)]

    def task_stacked_parameters(self) -> list[nn.Parameter]:
        """Parameters whose slice t belongs to task t (its own optimiser state; see
        ``sharewise.training.task_optim``): the per-task weights unless shared or frozen."""
        if self.shared or not isinstance(self.weight, nn.Parameter):
            return []
        return [self.weight, self.bias]

    def export_task(self, task: int) -> nn.Module:
        """Task ``task``'s map alone on its own (unpadded) input ``[B, *in_t] -> [B, out]``."""
        from sharewise.components.plain import Dense

        row = 0 if self.shared else task
        return Dense(self.weight[row, :self.in_dims[task]], self.bias[row, 0], self.activation_name, flatten=True)

    def forward(self, x: Tensor, tasks: Sequence[int] | None = None) -> Tensor:
        """x [T', B, *in] (flattened to in_max) -> [T', B, out]."""
        t, b = x.shape[:2]
        x = x.reshape(t, b, -1)  # [T', B, in]
        if x.shape[-1] < self.in_max:
            x = F.pad(x, (0, self.in_max - x.shape[-1]))
        w, bias = self._select(tasks)  # [T' or 1, in, out], [T' or 1, 1, out]
        if self.shared:
            y = torch.addmm(bias[0], x.reshape(t * b, -1), w[0]).view(t, b, -1)
        else:
            y = gemm.task_linear(x, w, bias)  # [T', B, out]
        # In place: the product's backward needs its inputs, not its output (one allocation less).
        return y.relu_() if self.activation_name == "relu" else self._act(y)


class ChannelPad(nn.Module):
    """Zero-pads image channels to the core's width (the soft-ordering Omniglot encoder).

    [T', B, C_in, H, W] -> [T', B, C, H, W]. No parameters: the paper pads the 1-channel
    105x105 image to 53 channels so every core conv maps 53 -> 53.

    ``lazy=True`` hands the image on unpadded (``[T', B, C_in, H, W]``): the builders set it only
    when the core's layers are the built-in conv layers, told to read a narrower input as
    zero-padded (``ConvPoolLayer.zero_extends_input``), and the scheme passes its input only to
    those layers (``SharingScheme.reads_input_by_layers``; ``sharewise.builders.feed_unpadded``).
    The network computed is the same; the padded channels are never multiplied.
    """

    def __init__(self, channels: int, lazy: bool = False) -> None:
        super().__init__()
        self.channels, self.lazy = channels, lazy

    def forward(self, x: Tensor, tasks: Sequence[int] | None = None) -> Tensor:
        if self.lazy:
            return x
        if x.dim() == 3:  # [T', B, F]: feature vectors, padded along their one axis
            return F.pad(x, (0, self.channels - x.shape[2]))
        return F.pad(x, (0, 0, 0, 0, 0, self.channels - x.shape[2]))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, lazy={self.lazy}"

    def export_task(self, task: int) -> nn.Module:
        from sharewise.components.plain import ChannelPad as PlainChannelPad

        return PlainChannelPad(self.channels)


class Identity(nn.Module):
    """E_t = identity (the random-pattern experiment feeds x straight into the core)."""

    def forward(self, x: Tensor, tasks: Sequence[int] | None = None) -> Tensor:
        return x

    def export_task(self, task: int) -> nn.Module:
        return nn.Identity()


class TaskModules(nn.Module):
    """The user's task encoders E_t or heads D_t: one module per task, or one module for all.

    ``[T', B, *in] -> [T', B, *out]``. A shared module runs once on the stacked batch
    ``[T'*B, *in]``; per-task modules run once each on their task's rows (different modules
    cannot be stacked into one call in general). ``in_shapes`` (encoders of tasks whose inputs
    differ in shape): the sampler hands such inputs flattened and zero-padded to the widest
    task, so each task's rows are cut back to its own shape first. ``pad_to`` zero-pads the last
    axis to a common width, so heads of tasks with fewer outputs fit the stacked output
    ``[T', B, O_max]`` (the loss ignores the padded logits).

    Per-task modules declare no owners (``parameter_owners``) because they need none: unlike a
    stacked ``[T, ...]`` parameter, task t's module is parameters of its own, which another
    task's forward pass never reaches, so in that task's update their gradient is None, not zero,
    and the optimiser skips them (weights, moments and step count stay bit-identical, as for the
    paper's separate per-task variables; ``tests/training/test_task_ownership.py`` checks it).
    """

    def __init__(self, modules: nn.Module | Sequence[nn.Module], n_tasks: int, pad_to: int | None = None,
                 role: str = "encoders", in_shapes: Sequence[Sequence[int]] | None = None) -> None:
        super().__init__()
        self.role, self.pad_to, self.n_tasks = role, pad_to, n_tasks
        self.in_shapes = [tuple(int(d) for d in s) for s in in_shapes] if in_shapes is not None else None
        if isinstance(modules, nn.Module) and not isinstance(modules, nn.ModuleList):
            self.shared: nn.Module | None = modules
            self.per_task: nn.ModuleList | None = None
        else:
            mods = list(modules)
            if len(mods) != n_tasks:
                from sharewise.errors import ConfigError

                raise ConfigError(f"{role}: expected one module per task ({n_tasks}) or one shared module, "
                                  f"but got a list of {len(mods)}")
            self.shared, self.per_task = None, nn.ModuleList(mods)

    def export_task(self, task: int) -> nn.Module:
        """A copy of task ``task``'s module (the shared one for a shared module), on its own input."""
        import copy

        return copy.deepcopy(self.module_of(task))

    def module_of(self, task: int) -> nn.Module:
        return self.shared if self.shared is not None else self.per_task[task]  # type: ignore[index]

    def parameter_users(self, tasks: Sequence[int] | None = None) -> list[ParameterUse]:
        """A shared module is used by every task; task t alone uses its own module's parameters."""
        ids = list(range(self.n_tasks)) if tasks is None else [int(t) for t in tasks]
        if self.per_task is None:
            return used_by_all(self.parameters(), len(ids))
        uses = []
        for owner, module in enumerate(self.per_task):
            users = torch.tensor([[t == owner] for t in ids], dtype=torch.bool)  # [T', 1]
            uses += [ParameterUse(p, users) for p in module.parameters() if p.requires_grad]
        return uses

    def _own_input(self, x: Tensor, task: int) -> Tensor:
        """One task's rows ``[B, *padded]`` cut back to the task's own input shape."""
        if self.in_shapes is None or tuple(x.shape[1:]) == self.in_shapes[task]:
            return x
        shape = self.in_shapes[task]
        return x.reshape(x.shape[0], -1)[:, :math.prod(shape)].reshape(x.shape[0], *shape)

    def forward(self, x: Tensor, tasks: Sequence[int] | None = None) -> Tensor:
        t, b = x.shape[:2]
        ids = list(range(t)) if tasks is None else [int(i) for i in tasks]
        same_shape = self.in_shapes is None or all(self.in_shapes[i] == tuple(x.shape[2:]) for i in ids)
        if self.shared is not None and same_shape:
            y = self.shared(x.reshape(t * b, *x.shape[2:]))  # [T'*B, *out]
            return self._pad(y.view(t, b, *y.shape[1:]))
        return torch.stack([self._pad(self.module_of(i)(self._own_input(x[row], i))) for row, i in enumerate(ids)])

    def _pad(self, y: Tensor) -> Tensor:
        if self.pad_to is not None and y.shape[-1] < self.pad_to:
            return F.pad(y, (0, self.pad_to - y.shape[-1]))
        return y

    def task_parameter_counts(self, n_tasks: int) -> tuple[list[int], int]:
        """(parameters each task owns, parameters shared by all tasks)."""
        if self.shared is not None:
            return [0] * n_tasks, sum(p.numel() for p in self.shared.parameters())
        return [sum(p.numel() for p in m.parameters()) for m in self.per_task], 0  # type: ignore[union-attr]


class FeatureHeads(nn.Module):
    """Flatten (or global-average) the core's features, then the stacked per-task linear heads."""

    def __init__(self, heads: StackedDense, pool: bool) -> None:
        super().__init__()
        self.heads, self.pool = heads, pool

    def parameter_users(self, tasks: Sequence[int] | None = None) -> list[ParameterUse]:
        return self.heads.parameter_users(tasks)

    def export_task(self, task: int) -> nn.Module:
        from sharewise.components.plain import SpatialMean

        head = self.heads.export_task(task)
        return nn.Sequential(SpatialMean(), head) if self.pool else head

    def forward(self, h: Tensor, tasks: Sequence[int] | None = None) -> Tensor:
        if self.pool:
            h = h.mean(dim=(-2, -1))  # [T', B, C]
        return self.heads(h.flatten(2), tasks)
