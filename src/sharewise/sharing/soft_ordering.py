"""Soft layer ordering (Meyerson & Miikkulainen 2018, Eq. 7).

    y_t^k = sum_j s(t, j, k) * dropout(W_j(y_t^{k-1})),   s(t, :, k) = softmax_j(logits[t, :, k])

All tasks run in one stacked pass: at each depth every shared layer is applied once to the
stacked batch of all tasks (one wide GEMM for dense layers) and the mixing is one
multiply-and-sum over the candidate axis; there is no Python loop over tasks or (task, layer)
pairs. Options:

- ``identity``: a fixed identity layer as an extra candidate at every depth (Sec. 4.4), so a task
  can skip a depth. It has no dropout (dropping an identity would only rescale the input).
- ``scale_fn="sigmoid"``: independent sigmoid scales instead of the softmax (App. A.5, used to
  sweep one layer's scale in [0, 1] for the layer-behaviour visualisation).
- ``frozen=True`` (registered as ``soft_ordering_uniform``): scales fixed at uniform. This is the
  ablation that separates a *learned* order from mere averaging of the layers.
- ``parallel_init=b`` (default 0, the paper's equal initial scales, Sec. 3): add ``b`` to the logit
  of layer k at depth k, so training starts near the parallel order (softmax ``e^b / (e^b + J - 1)``
  on it). A diagnostic: on Omniglot at batch one, the uniform start averages J random feature maps
  per depth into nearly input-independent features and training stalls at chance (results §1.5).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from sharewise.components.dropout import dropout_masks, packed_dropout
from sharewise.components.layer_bank import LayerBank
from sharewise.components.usage import ParameterUse, task_rows, with_rest_used_by_all
from sharewise.errors import ConfigError
from sharewise.sharing._registry import register_scheme
from sharewise.sharing._soft_mix import mix_layers, relu_dropout_mix
from sharewise.sharing.base import SharingScheme, StructureFigure, task_list
from sharewise.sharing.core_spec import CoreSpec, check_reorderable


class SoftOrdering(SharingScheme):
    """Eq. 7 with scale logits of shape ``[T, J, D]`` (task, candidate layer, depth).

    ``J = L`` shared layers, plus one if ``identity``. Logits start equal (uniform scales), as
    the paper prescribes, to avoid an initial bias of layer function across tasks.
    """

    def __init__(self, bank: LayerBank, n_tasks: int, depth: int, dropout: float, *,
                 identity: bool = False, scale_fn: Literal["softmax", "sigmoid"] = "softmax",
                 frozen: bool = False, parallel_init: float = 0.0) -> None:
        super().__init__(n_tasks)
        if scale_fn not in ("softmax", "sigmoid"):
            raise ConfigError(f"soft_ordering scale_fn must be 'softmax' or 'sigmoid', got {scale_fn!r}")
        self.bank, self.depth, self.dropout = bank, depth, dropout
        self.identity, self.scale_fn, self.frozen = identity, scale_fn, frozen
        self.reads_input_by_layers = not identity  # the identity candidate adds x itself to the mix
        n_candidates = bank.n_layers + int(identity)
        if not math.isfinite(parallel_init):
            raise ConfigError(f"soft_ordering parallel_init must be a finite number, got {parallel_init!r}")
        logits = torch.zeros(n_tasks, n_candidates, depth)
        for k in range(min(bank.n_layers, depth)):
            logits[:, k, k] += float(parallel_init)
        if frozen:
            self.register_buffer("logits", logits)
        else:
            self.logits = nn.Parameter(logits)

    def scales(self, tasks: Sequence[int] | None = None) -> Tensor:
        """s(t, j, k) as ``[T', J, D]``; softmax over the candidate axis j."""
        logits = self.logits if tasks is None else self.logits[list(tasks)]
        if self.scale_fn == "softmax":
            return torch.softmax(logits, dim=1)
        return torch.sigmoid(logits)

    def forward(self, x: Tensor, tasks: Sequence[int] | None = None) -> Tensor:
        # Dense banks write every layer's output of a row side by side ([T'*B, L, W], one GEMM);
        # the mix at each depth is then L multiply-adds over contiguous [T', B, W] slices
        # (``_soft_mix.mix_layers``), with no copy of the bank's weights or outputs.
        t, b = x.shape[:2]
        if not self.bank.layer_rows:
            return self._forward_layer_first(x, t, b, tasks)
        mix = self.scales(tasks)  # [T', J, D]
        if self._fused_relu_dropout():
            return self._forward_fused(x, mix, t, b)
        y = x
        for k in range(self.depth):
            flat = y.reshape(t * b, *y.shape[2:])  # [T'*B, *f]
            outs = packed_dropout(self.bank.forward_all(flat).transpose(0, 1), self.dropout, self.training)
            if self.identity:
                outs = torch.cat([outs, flat.unsqueeze(1)], 1)  # [T'*B, J, *f]
            y = mix_layers(outs.view(t, b, *outs.shape[1:]), mix[:, :, k])  # [T', B, *f']
        return y

    def _fused_relu_dropout(self) -> bool:
        """Training a ReLU dense bank with dropout and no identity: ReLU, dropout and mix are one
        node per depth (``sharing/_soft_mix.py``; fewer passes over ``[T'*B, L, W]``)."""
        return (self.training and 0.0 < round(self.dropout * 65536) < 65536 and not self.identity
                and getattr(self.bank, "activation_name", None) == "relu" and hasattr(self.bank, "linear_all"))

    def _forward_fused(self, x: Tensor, mix: Tensor, t: int, b: int) -> Tensor:
        y = x
        keeps: list[Tensor] = []
        for k in range(self.depth):
            pre = self.bank.linear_all(y.reshape(t * b, -1))  # [T'*B, L, W]
            if not keeps:  # every depth's mask from one draw, the bits of one dropout_mask per depth
                keeps, scale = dropout_masks([pre.shape] * self.depth, self.dropout, pre.dtype, pre.device)
            rows = (t, b, *pre.shape[1:])
            y = relu_dropout_mix(pre.view(rows), keeps[k].view(rows), mix[:, :, k], scale)  # [T', B, W]
        return y

    def _forward_layer_first(self, x: Tensor, t: int, b: int, tasks: Sequence[int] | None) -> Tensor:
        """Banks whose layers run one by one (convolutions): mix [J, T', B, *f] by broadcasting."""
        mix = self.scales(tasks).permute(1, 2, 0)  # [J, D, T']
        y = x
        for k in range(self.depth):
            outs = self.bank.forward_all(y.reshape(t * b, *y.shape[2:]))  # [L, T'*B, *f]
            flat = None if self.identity else _images_as_rows(outs)
            if flat is not None:
                y = self._mix_rows(flat, mix[:, k], t, b)
                continue
            outs = packed_dropout(outs, self.dropout, self.training)
            outs = outs.view(outs.shape[0], t, b, *outs.shape[2:])  # [L, T', B, *f]
            if self.identity:
                outs = torch.cat([outs, y.unsqueeze(0)])  # [J, T', B, *f]
            w = mix[:, k].reshape(mix.shape[0], t, *([1] * (outs.dim() - 2)))  # [J, T', 1, ...]
            y = (outs * w).sum(0)  # [T', B, *f]
        return y

    def _mix_rows(self, flat: tuple[Tensor, tuple[list[int], list[int]]], s: Tensor, t: int, b: int) -> Tensor:
        """Dropout and the mix over ``[L, T'*B, F]`` rows (each image's features in memory order),
        then the ``[T', B, *f]`` view in the layers' own layout (channels-last convolutions: no
        copy). As contiguous rows the mask multiply and the mix run at full speed; on the
        channels-last 5-D view they were 1.8x slower than on NCHW (profiled, Omniglot-50)."""
        rows, layout = flat
        rows = packed_dropout(rows, self.dropout, self.training)
        n_layers, _, features = rows.shape
        per_task = rows.view(n_layers, t, b * features).unbind(0)  # backward: one stack, no zero-filled slices
        y = per_task[0] * s[0].view(t, 1)
        for j in range(1, n_layers):
            y = y.addcmul_(per_task[j], s[j].view(t, 1))  # [T', B*F]; mul keeps inputs, not its output
        return _rows_as_images(y, t, b, layout)

    def export_task(self, task: int) -> nn.Module:
        """Task t's soft order with its scales fixed: depth k is ``sum_j s(t, j, k) W_j`` (the bank
        folds the scales into dense ReLU / linear weights; see ``LayerBank.export_scaled_sum``)."""
        with torch.no_grad():
            s = self.scales([task])[0]  # [J, D]
        n = self.bank.n_layers
        return nn.Sequential(*[self.bank.export_scaled_sum(s[:n, k], float(s[n, k]) if self.identity else None)
                               for k in range(self.depth)])

    def task_state_names(self) -> set[str]:
        return {"logits"}  # a parameter, or a buffer when frozen (soft_ordering_uniform)

    def architecture_parameters(self) -> list[nn.Parameter]:
        return [] if self.frozen else [self.logits]

    def parameter_users(self, tasks: Sequence[int] | None = None) -> list[ParameterUse]:
        """Every task uses every layer (all are mixed in); task t's logits are its own."""
        ids = task_list(tasks, self.n_tasks)
        own = [] if self.frozen else [task_rows(self.logits, ids)]
        return with_rest_used_by_all(self, own, len(ids))

    def task_stacked_parameters(self) -> list[nn.Parameter]:
        return self.architecture_parameters()  # [T, J, D]

    def learned_structure(self) -> dict[str, Any]:
        names = [f"W{j + 1}" for j in range(self.bank.n_layers)] + (["I"] if self.identity else [])
        return {
            "scales": self.scales().detach().cpu().tolist(),  # [T][J][D]
            "candidates": names,
            "scale_fn": self.scale_fn,
            "frozen": self.frozen,
        }

    @classmethod
    def render_structure(cls, structure: Mapping[str, Any], records: Sequence[Mapping[str, Any]] = ()
                         ) -> tuple[list[StructureFigure], dict[str, Any]]:
        """The learned soft order per task (Fig. 4d) and each layer's use by depth (Fig. 6b)."""
        from sharewise.reporting import plots

        rest = dict(structure)
        scales, candidates = rest.pop("scales", None), rest.pop("candidates", [])
        if scales is None:
            return [], rest
        names = list(structure.get("tasks") or [f"task {t}" for t in range(len(scales))])
        return [StructureFigure("soft_order", plots.plot_soft_order(scales, names, candidates)[0],
                                "Learned soft order per task"),
                StructureFigure("layer_usage", plots.plot_layer_usage(scales, candidates)[0],
                                "Layer usage by depth")], rest


def _images_as_rows(outs: Tensor) -> tuple[Tensor, tuple[list[int], list[int]]] | None:
    """``outs [L, N, *f]`` whose every image is one dense block (any layout of its ``f`` dims) ->
    (the ``[L, N, F]`` view of the same memory, (the ``f`` sizes in memory order, that order));
    None otherwise."""
    order = sorted(range(outs.dim() - 2), key=lambda d: -outs.stride(2 + d))
    in_memory_order = outs.permute(0, 1, *[2 + d for d in order])
    if not in_memory_order.is_contiguous():
        return None
    sizes = list(in_memory_order.shape[2:])
    return in_memory_order.view(outs.shape[0], outs.shape[1], -1), (sizes, order)


def _rows_as_images(y: Tensor, t: int, b: int, layout: tuple[list[int], list[int]]) -> Tensor:
    """The inverse of :func:`_images_as_rows` for the mixed ``[T', B*F]``: the ``[T', B, *f]`` view."""
    sizes, order = layout
    return y.view(t, b, *sizes).permute(0, 1, *[2 + order.index(d) for d in range(len(order))])


def _build(core: CoreSpec, n_tasks: int, scheme: str, **kwargs: Any) -> SoftOrdering:
    bank = core.make_bank(core.depth)
    check_reorderable(bank, core.feature_shape, core.depth, scheme, identity=bool(kwargs.get("identity")))
    return SoftOrdering(bank, n_tasks, core.depth, core.dropout, **kwargs)


@register_scheme("soft_ordering")
def build_soft_ordering(core: CoreSpec, n_tasks: int, *, seed: int = 0, identity: bool = False,
                        scale_fn: Literal["softmax", "sigmoid"] = "softmax",
                        parallel_init: float = 0.0) -> SoftOrdering:
    """Learned soft order (Eq. 7)."""
    return _build(core, n_tasks, "soft_ordering", identity=identity, scale_fn=scale_fn,  # type: ignore[arg-type]
                  parallel_init=parallel_init)


@register_scheme("soft_ordering_uniform")
def build_soft_ordering_uniform(core: CoreSpec, n_tasks: int, *, seed: int = 0,
                                identity: bool = False) -> SoftOrdering:
    """Ablation: the soft-ordering model with its scales frozen at uniform (1/J)."""
    return _build(core, n_tasks, "soft_ordering_uniform", identity=identity, frozen=True)
