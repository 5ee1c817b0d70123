"""Plain single-task modules that an exported task is made of (``sharewise export``).

Every class here imports only torch, takes one task's batch ``[B, *f]`` (no task axis, no task
index) and holds only the parameters that task uses, so that an exported network is small,
traceable into TorchScript, and its state dict loads into these classes without the rest of
sharewise (the file can be copied on its own). Schemes and banks build them through their
``export_task`` / ``export_layer`` methods (see ``sharewise.sharing.base``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

_ACTIVATIONS = ("relu", "linear", "tanh", "sigmoid")


def _act(x: Tensor, name: str) -> Tensor:
    if name == "relu":
        return torch.relu(x)
    if name == "tanh":
        return torch.tanh(x)
    if name == "sigmoid":
        return torch.sigmoid(x)
    return x


class Dense(nn.Module):
    """``act(flatten(x) @ weight + bias)``: weight ``[in, out]``, bias ``[out]``."""

    def __init__(self, weight: Tensor, bias: Tensor, activation: str = "linear", flatten: bool = False) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"expected an activation in {_ACTIVATIONS}, but got {activation!r}")
        self.weight = nn.Parameter(weight.detach().clone())
        self.bias = nn.Parameter(bias.detach().clone())
        self.activation, self.flatten = activation, flatten

    def forward(self, x: Tensor) -> Tensor:
        if self.flatten:
            x = x.reshape(x.shape[0], -1)  # [B, in]
        return _act(torch.addmm(self.bias, x, self.weight), self.activation)  # [B, out]


class Activation(nn.Module):
    """One of relu / linear / tanh / sigmoid by name (the banks' activations)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        if name not in _ACTIVATIONS:
            raise ValueError(f"expected an activation in {_ACTIVATIONS}, but got {name!r}")
        self.name = name

    def forward(self, x: Tensor) -> Tensor:
        return _act(x, self.name)


class FoldedDenseMix(nn.Module):
    """Soft ordering's mix of J dense layers at one depth with the scales folded into the weights.

    ``sum_j s_j act(x W_j + b_j) = sum_j act(x (s_j W_j) + s_j b_j)`` for a positively homogeneous
    ``act`` (ReLU, linear) and ``s_j >= 0`` (softmax and sigmoid scales are), so the depth is one
    GEMM ``[B, in] @ [in, J*out]`` and a sum over J, with no scale left at run time.
    ``identity_scale`` (soft ordering's identity candidate): ``+ s_I x``.
    """

    def __init__(self, weight: Tensor, bias: Tensor, activation: str, identity_scale: float | None = None) -> None:
        super().__init__()
        self.n_layers, self.out = int(weight.shape[1]), int(weight.shape[2])
        self.weight = nn.Parameter(weight.detach().reshape(weight.shape[0], -1).clone())  # [in, J*out]
        self.bias = nn.Parameter(bias.detach().reshape(-1).clone())  # [J*out]
        self.activation = activation
        self.has_identity = identity_scale is not None
        self.register_buffer("identity_scale", torch.tensor(float(identity_scale or 0.0)))

    def forward(self, x: Tensor) -> Tensor:
        y = _act(torch.addmm(self.bias, x, self.weight), self.activation)  # [B, J*out]
        y = y.view(x.shape[0], self.n_layers, self.out).sum(1)  # [B, out]
        if self.has_identity:
            y = y + self.identity_scale * x
        return y


class ScaledSum(nn.Module):
    """``sum_j s_j f_j(x)`` (+ ``s_I x``): soft ordering's depth over any layers (scales kept)."""

    def __init__(self, layers: Sequence[nn.Module], scales: Tensor, identity_scale: float | None = None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.register_buffer("scales", scales.detach().clone().float())  # [J]
        self.has_identity = identity_scale is not None
        self.register_buffer("identity_scale", torch.tensor(float(identity_scale or 0.0)))

    def forward(self, x: Tensor) -> Tensor:
        y = torch.zeros(1, dtype=x.dtype, device=x.device)
        for j, layer in enumerate(self.layers):
            y = y + self.scales[j] * layer(x)
        if self.has_identity:
            y = y + self.identity_scale * x
        return y


class MeanOf(nn.Module):
    """The mean of a task's active components in a modular layer (Gumbel-Matrix, Sec. III-A)."""

    def __init__(self, components: Sequence[nn.Module]) -> None:
        super().__init__()
        if not components:
            raise ValueError("MeanOf needs at least one component; use Zeros for a task with none active")
        self.components = nn.ModuleList(components)

    def forward(self, x: Tensor) -> Tensor:
        y = torch.zeros(1, dtype=x.dtype, device=x.device)
        for component in self.components:
            y = y + component(x)
        return y / len(self.components)


class Zeros(nn.Module):
    """A modular layer where the task has no active component: a zero output of ``shape`` per sample."""

    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__()
        self.shape = [int(s) for s in shape]

    def forward(self, x: Tensor) -> Tensor:
        return torch.zeros([x.shape[0]] + self.shape, dtype=x.dtype, device=x.device)


class ChannelPad(nn.Module):
    """Zero-pad image channels ``[B, C_in, H, W] -> [B, C, H, W]``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.pad(x, (0, 0, 0, 0, 0, self.channels - x.shape[1]))


class SpatialMean(nn.Module):
    """Average the image axes ``[B, C, H, W] -> [B, C]`` (the built-in heads' pooling)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.mean(dim=(-2, -1))


class FirstColumns(nn.Module):
    """Keep the task's own outputs ``[B, O_max] -> [B, n]`` (stacked heads pad to the widest task)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = int(n)

    def forward(self, x: Tensor) -> Tensor:
        return x[:, :self.n]


class Columns(nn.Module):
    """Cross-stitch / NDDR for one task: every task's column is still needed (task t's features
    mix all columns after every block), so all columns run on the input and ``mixers[d]`` maps the
    stacked ``[T, B, *f]`` to the mixed ``[T, B, *f]``; the task's row is returned."""

    def __init__(self, columns: Sequence[Sequence[nn.Module]], mixers: Sequence[nn.Module], task: int) -> None:
        super().__init__()
        self.columns = nn.ModuleList([nn.ModuleList(list(c)) for c in columns])  # [T][D]
        self.mixers = nn.ModuleList(mixers)  # [D]
        self.task, self.n_tasks = int(task), len(columns)

    def forward(self, x: Tensor) -> Tensor:
        hs = [x for _ in range(self.n_tasks)]
        for d, mixer in enumerate(self.mixers):
            hs = [column[d](h) for column, h in zip(self.columns, hs)]
            hs = list(mixer(torch.stack(hs)).unbind(0))  # [T, B, *f]
        return hs[self.task]


class LinearMix(nn.Module):
    """Cross-stitch unit ``x'_i = sum_j alpha[i, j] x_j`` on ``[T, B, *f]``."""

    def __init__(self, alpha: Tensor) -> None:
        super().__init__()
        self.alpha = nn.Parameter(alpha.detach().clone())  # [T, T]

    def forward(self, h: Tensor) -> Tensor:
        return (self.alpha @ h.reshape(h.shape[0], -1)).view(h.shape)  # [T, B, *f]


class NDDRMix(nn.Module):
    """NDDR layer (Gao et al., Eq. 1-2) on ``[T, B, C, *s]``: 1x1 conv of the concatenation,
    per-channel batch norm (evaluation statistics), ReLU."""

    def __init__(self, weight: Tensor, norm: nn.BatchNorm1d) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.detach().clone())  # [T*C, T*C]
        self.norm = norm

    def forward(self, h: Tensor) -> Tensor:
        t, b, c = h.shape[0], h.shape[1], h.shape[2]
        z = h.transpose(0, 1).reshape(b, t * c, -1)  # [B, T*C, S]
        y = torch.einsum("oi,bis->bos", self.weight, z)
        y = self.norm(y if y.shape[-1] > 1 else y.squeeze(-1))
        return y.relu().reshape(h.transpose(0, 1).shape).transpose(0, 1)  # [T, B, C, *s]
