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
            y = torch.baddbmm(bias, x, w)  # [T', B, out]
        return self._act(y)


class ChannelPad(nn.Module):
    """Zero-pads image channels to the core's width (the soft-ordering Omniglot encoder).

    [T', B, C_in, H, W] -> [T', B, C, H, W]. No parameters: the paper pads the 1-channel
    105x105 image to 53 channels so every core conv maps 53 -> 53.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, x: Tensor, tasks: Sequence[int] | None = None) -> Tensor:
        return F.pad(x, (0, 0, 0, 0, 0, self.channels - x.shape[2]))


class Identity(nn.Module):
    """E_t = identity (the random-pattern experiment feeds x straight into the core)."""

    def forward(self, x: Tensor, tasks: Sequence[int] | None = None) -> Tensor:
        return x
