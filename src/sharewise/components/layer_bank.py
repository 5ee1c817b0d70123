"""Banks of same-shape layers that sharing schemes arrange (the paper's W_1..W_D).

A sharing scheme never calls a layer directly; it asks a bank for one of three access patterns,
so that dense layers can serve each of them with one matrix product while arbitrary modules
(convolutions, ...) fall back to a loop over *layers* (never over tasks):

- ``forward_one(j, x)``: layer j on a batch (parallel ordering: every task uses the same layer).
- ``forward_all(x)``: every layer on the same batch (soft ordering needs every candidate output).
- ``forward_selected(x, layer_of_task)``: task t uses layer ``layer_of_task[t]`` (permuted
  ordering, single-task copies).
"""

from __future__ import annotations

import abc
import copy
import math
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from sharewise.components import gemm
from sharewise.components.usage import ParameterUse

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": torch.relu,
    "linear": lambda x: x,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
}


def activation_fn(name: str) -> Callable[[Tensor], Tensor]:
    from sharewise.errors import ConfigError

    if name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


class LayerBank(nn.Module, abc.ABC):
    """Interface: ``n_layers`` layers, each mapping a feature tensor to one of the same kind."""

    n_layers: int
    # True: ``forward_all(x)`` is the [L, N, *f'] transpose of a contiguous [N, L, *f'] tensor (one
    # GEMM writes every layer's output of a row side by side), so soft ordering mixes the layers on
    # those rows with no copy; False: it mixes the [L, N, *f'] stack (convolutions run layer by layer).
    layer_rows: bool = False

    def describe(self, j: int) -> str:
        """How error messages name layer j (user blocks say their class and position)."""
        return f"core layer {j}"

    @abc.abstractmethod
    def forward_one(self, j: int, x: Tensor) -> Tensor:
        """x [N, *f] -> [N, *f']: layer j."""

    @abc.abstractmethod
    def forward_all(self, x: Tensor) -> Tensor:
        """x [N, *f] -> [L, N, *f']: every layer on the same input."""

    @abc.abstractmethod
    def forward_selected(self, x: Tensor, layer_of_task: Sequence[int]) -> Tensor:
        """x [T, B, *f] -> [T, B, *f']; task t uses layer ``layer_of_task[t]``."""

    def forward_chain(self, x: Tensor, layers: Sequence[int], dropout: float, training: bool) -> Tensor:
        """x [N, *f] -> [N, *f']: layers ``layers`` in order (each at most once), each followed by
        ``packed_dropout(., dropout, training)``: ``forward_one`` in a loop, unless a bank can do
        better (with the same dropout masks: the chain is parallel ordering's forward pass)."""
        from sharewise.components.dropout import packed_dropout

        for j in layers:
            x = packed_dropout(self.forward_one(j, x), dropout, training)
        return x

    @abc.abstractmethod
    def layer_uses(self, layer_users: Tensor) -> list[ParameterUse]:
        """``layer_users [T', L]`` (bool: stacked task i uses layer j) -> the parameter blocks it means."""

    def export_layer(self, j: int) -> nn.Module:
        """Layer j alone as a plain module ``[N, *f] -> [N, *f']`` holding only its parameters
        (``sharewise export``). Default: a view of a copy of the whole bank (exact, not minimal);
        banks whose layers are slices of fused weights override it."""
        return _BankLayer(copy.deepcopy(self), j)

    def export_scaled_sum(self, scales: Tensor, identity_scale: float | None = None) -> nn.Module:
        """``x -> sum_j scales[j] * layer_j(x)`` (+ ``identity_scale * x``): one soft-ordering
        depth for one task (``scales [L]``, fixed). Default: the exported layers and the scales."""
        from sharewise.components.plain import ScaledSum

        return ScaledSum([self.export_layer(j) for j in range(self.n_layers)], scales, identity_scale)


    def load_layer(self, j: int, state: Mapping[str, Tensor], k: int) -> None:
        """Set layer j to layer k of a bank of the same kind whose ``state_dict()`` is ``state``
        (``sharewise adapt``: a new task's branch copies the parent's blocks)."""
        raise NotImplementedError(f"{type(self).__name__} cannot copy single layers between banks")


class _BankLayer(nn.Module):
    """Layer ``j`` of a bank as a module (the fallback of ``LayerBank.export_layer``)."""

    def __init__(self, bank: LayerBank, j: int) -> None:
        super().__init__()
        self.bank, self.j = bank, int(j)

    def forward(self, x: Tensor) -> Tensor:
        return self.bank.forward_one(self.j, x)


class DenseLayerBank(LayerBank):
    """``n_layers`` affine layers ``width -> width`` followed by an activation.

    The weights of all layers are one tensor ``[in, L, out]`` so that ``forward_all`` is a single
    wide matrix product ``[N, in] @ [in, L*out]`` (one GEMM beats L small ones on a CPU; through
    oneDNN where it is faster, :mod:`sharewise.components.gemm`), and
    ``forward_selected`` is one batched product over tasks. Initialisation is Glorot-uniform
    weights and zero biases, Keras' defaults, which the soft-ordering paper used.
    """

    def __init__(self, n_layers: int, width: int, activation: str = "relu",
                 in_width: int | None = None) -> None:
        super().__init__()
        self.n_layers = n_layers
        self.in_width = in_width or width
        self.width = width
        self.activation_name = activation
        self._act = activation_fn(activation)
        bound = math.sqrt(6.0 / (self.in_width + width))
        self.weight = nn.Parameter(torch.empty(self.in_width, n_layers, width).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(n_layers, width))
        self._index_cache: dict[tuple[int, ...], Tensor] = {}

    def layer_weight(self, j: int) -> tuple[Tensor, Tensor]:
        """Weight ``[in, out]`` and bias ``[out]`` of layer j (for references and tests)."""
        return self.weight[:, j, :], self.bias[j]

    def forward_one(self, j: int, x: Tensor) -> Tensor:
        return self._act(gemm.linear(x, self.weight[:, j, :], self.bias[j]))  # [N, out]

    def forward_chain(self, x: Tensor, layers: Sequence[int], dropout: float, training: bool) -> Tensor:
        """As ``forward_one`` + ``packed_dropout`` per layer, with the same masks (tested), but:

        - the weights are cut by one ``unbind`` per tensor: the backward pass then stacks the
          layers' gradients once instead of writing each into a zero-filled ``[in, L, out]``
          tensor and summing L of them;
        - every layer's dropout mask comes from one draw (``dropout_masks``: the same bits as one
          draw per layer), already scaled;
        - ReLU runs in place on the GEMM's output (``gemm.linear`` does not keep its output for the
          backward pass), one allocation less per layer.

        A step of parallel ordering at the LibMTL workload's sizes had ~40 % fixed per-op cost
        (issue 15): these cut ops per layer, not arithmetic."""
        from sharewise.components.dropout import dropout_masks

        layers = list(layers)
        if training and round(dropout * 65536) >= 65536:
            return super().forward_chain(x, layers, dropout, training)  # everything dropped
        drop = training and dropout > 0.0
        weights, biases = self.weight.unbind(1), self.bias.unbind(0)  # L x [in, out], L x [out]
        relu = self.activation_name == "relu"
        masks: list[Tensor] = []
        for i, j in enumerate(layers):
            y = gemm.linear(x, weights[j], biases[j])  # [N, out]
            y = y.relu_() if relu else self._act(y)
            if drop and not masks:  # drawn here: under autocast y's dtype is not x's
                masks, _ = dropout_masks([y.shape] * len(layers), dropout, y.dtype, y.device, scaled=True)
            x = y * masks[i] if drop else y
        return x

    def forward_all(self, x: Tensor) -> Tensor:
        return self._act(self.linear_all(x)).transpose(0, 1)  # [L, N, out], a view of [N, L, out]

    layer_rows = True

    def linear_all(self, x: Tensor) -> Tensor:
        """x [N, in] -> [N, L, out]: every layer's pre-activation (one GEMM, the weights as stored)."""
        flat_w = self.weight.reshape(self.in_width, self.n_layers * self.width)  # [in, L*out], a view
        return gemm.linear(x, flat_w, self.bias.reshape(-1)).view(x.shape[0], self.n_layers, self.width)

    def _index(self, layer_of_task: Sequence[int]) -> Tensor:
        key = tuple(int(j) for j in layer_of_task)
        idx = self._index_cache.get(key)
        if idx is None or idx.device != self.weight.device:
            idx = torch.tensor(key, dtype=torch.long, device=self.weight.device)
            self._index_cache[key] = idx
        return idx

    def forward_selected(self, x: Tensor, layer_of_task: Sequence[int]) -> Tensor:
        idx = self._index(layer_of_task)
        w = self.weight.index_select(1, idx).transpose(0, 1)  # [T, in, out]
        b = self.bias.index_select(0, idx).unsqueeze(1)  # [T, 1, out]
        return self._act(torch.baddbmm(b, x, w))  # [T, B, out]

    def layer_uses(self, layer_users: Tensor) -> list[ParameterUse]:
        return [ParameterUse(self.weight, layer_users, 1), ParameterUse(self.bias, layer_users, 0)]

    def extra_repr(self) -> str:
        return f"n_layers={self.n_layers}, {self.in_width}->{self.width}, activation={self.activation_name}"

    def export_layer(self, j: int) -> nn.Module:
        from sharewise.components.plain import Dense

        return Dense(self.weight[:, j, :], self.bias[j], self.activation_name)

    def load_layer(self, j: int, state: Mapping[str, Tensor], k: int) -> None:
        with torch.no_grad():
            self.weight[:, j].copy_(state["weight"][:, k])
            self.bias[j].copy_(state["bias"][k])

    def export_scaled_sum(self, scales: Tensor, identity_scale: float | None = None) -> nn.Module:
        """ReLU and linear layers take the scales into their weights (``FoldedDenseMix``)."""
        from sharewise.components.plain import FoldedDenseMix

        if self.activation_name not in ("relu", "linear") or bool((scales < 0).any()):
            return super().export_scaled_sum(scales, identity_scale)
        s = scales.detach().to(self.weight).view(1, -1, 1)  # [1, L, 1]
        return FoldedDenseMix(self.weight.detach() * s, self.bias.detach() * s[0], self.activation_name,
                              identity_scale)


class ModuleLayerBank(LayerBank):
    """Any modules as layers; loops over layers (not tasks). Used for convolutions and user blocks.

    ``names`` (optional) is how error messages call each layer, e.g. ``"block 2 (BasicBlock)"``.
    """

    def __init__(self, layers: Sequence[nn.Module], names: Sequence[str] | None = None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.n_layers = len(self.layers)
        self._names = list(names) if names is not None else None

    def describe(self, j: int) -> str:
        if self._names is not None:
            return f"core {self._names[j]}"
        return f"core layer {j} ({type(self.layers[j]).__name__})"

    def forward_one(self, j: int, x: Tensor) -> Tensor:
        return self.layers[j](x)

    def export_layer(self, j: int) -> nn.Module:
        return copy.deepcopy(self.layers[j])

    def load_layer(self, j: int, state: Mapping[str, Tensor], k: int) -> None:
        prefix = f"layers.{k}."
        self.layers[j].load_state_dict({n[len(prefix):]: v for n, v in state.items() if n.startswith(prefix)})

    def forward_all(self, x: Tensor) -> Tensor:
        return torch.stack([layer(x) for layer in self.layers])

    def layer_uses(self, layer_users: Tensor) -> list[ParameterUse]:
        return [ParameterUse(p, layer_users[:, j:j + 1]) for j, layer in enumerate(self.layers)
                for p in layer.parameters() if p.requires_grad]

    def forward_selected(self, x: Tensor, layer_of_task: Sequence[int]) -> Tensor:
        t, b = x.shape[:2]
        groups: dict[int, list[int]] = {}
        for task, j in enumerate(layer_of_task):
            groups.setdefault(int(j), []).append(task)
        if len(groups) == 1:  # every task uses the same layer: one call on the stacked batch
            (j,) = groups
            y = self.layers[j](x.reshape(t * b, *x.shape[2:]))
            return y.view(t, b, *y.shape[1:])
        outputs: list[Tensor | None] = [None] * t
        for j, tasks in groups.items():
            sel = x[tasks].reshape(len(tasks) * b, *x.shape[2:])
            y = self.layers[j](sel)
            y = y.view(len(tasks), b, *y.shape[1:])
            for i, task in enumerate(tasks):
                outputs[task] = y[i]
        return torch.stack(outputs)  # type: ignore[arg-type]
