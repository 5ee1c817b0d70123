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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from sharewise.components.layer_bank import LayerBank
from sharewise.errors import ConfigError
from sharewise.sharing._registry import register_scheme
from sharewise.sharing.base import SharingScheme
from sharewise.sharing.core_spec import CoreSpec, check_reorderable


def _dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Inverted dropout like ``F.dropout``, with a mask built from packed random bits.

    On a CPU ``F.dropout``'s ``bernoulli_`` costs about 25 ns per element, half of a stacked
    training step. Here one 64-bit draw (global RNG, so ``torch.manual_seed`` reproduces it) gives
    four 16-bit uniform integers u, and an element is kept iff ``u >= round(p * 2^16)``: the drop
    probability is p rounded to a multiple of 2^-16 (off by at most 7.7e-6), and the kept elements
    are scaled by the exact inverse of the keep probability, so E[dropout(x)] = x as in ``F.dropout``.
    """
    if not training or p == 0.0:
        return x
    dropped = round(p * 65536)  # of the 65536 values of u
    if dropped >= 65536:
        return x * 0.0
    n = x.numel()
    bits = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device).random_(-(2**63), 2**63 - 1)
    u = bits.view(torch.int16)[:n].view(x.shape)  # uniform on [-2^15, 2^15)
    keep = (u >= dropped - 32768).to(x.dtype)  # no grad
    return x * keep.mul_(65536.0 / (65536 - dropped))


class SoftOrdering(SharingScheme):
    """Eq. 7 with scale logits of shape ``[T, J, D]`` (task, candidate layer, depth).

    ``J = L`` shared layers, plus one if ``identity``. Logits start equal (uniform scales), as
    the paper prescribes, to avoid an initial bias of layer function across tasks.
    """

    def __init__(self, bank: LayerBank, n_tasks: int, depth: int, dropout: float, *,
                 identity: bool = False, scale_fn: Literal["softmax", "sigmoid"] = "softmax",
                 frozen: bool = False) -> None:
        super().__init__(n_tasks)
        if scale_fn not in ("softmax", "sigmoid"):
            raise ConfigError(f"soft_ordering scale_fn must be 'softmax' or 'sigmoid', got {scale_fn!r}")
        self.bank, self.depth, self.dropout = bank, depth, dropout
        self.identity, self.scale_fn, self.frozen = identity, scale_fn, frozen
        n_candidates = bank.n_layers + int(identity)
        logits = torch.zeros(n_tasks, n_candidates, depth)
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
        t, b = x.shape[:2]
        mix = self.scales(tasks).permute(1, 2, 0)  # [J, D, T']
        y = x
        for k in range(self.depth):
            outs = self.bank.forward_all(y.reshape(t * b, *y.shape[2:]))  # [L, T'*B, *f]
            outs = _dropout(outs, self.dropout, self.training)
            outs = outs.view(outs.shape[0], t, b, *outs.shape[2:])  # [L, T', B, *f]
            if self.identity:
                outs = torch.cat([outs, y.unsqueeze(0)])  # [J, T', B, *f]
            w = mix[:, k].reshape(mix.shape[0], t, *([1] * (outs.dim() - 2)))  # [J, T', 1, ...]
            y = (outs * w).sum(0)  # [T', B, *f]
        return y

    def architecture_parameters(self) -> list[nn.Parameter]:
        return [] if self.frozen else [self.logits]

    def learned_structure(self) -> dict[str, Any]:
        names = [f"W{j + 1}" for j in range(self.bank.n_layers)] + (["I"] if self.identity else [])
        return {
            "scales": self.scales().detach().cpu().tolist(),  # [T][J][D]
            "candidates": names,
            "scale_fn": self.scale_fn,
            "frozen": self.frozen,
        }


def _build(core: CoreSpec, n_tasks: int, scheme: str, **kwargs: Any) -> SoftOrdering:
    bank = core.make_bank(core.depth)
    check_reorderable(bank, core.feature_shape, core.depth, scheme)
    return SoftOrdering(bank, n_tasks, core.depth, core.dropout, **kwargs)


@register_scheme("soft_ordering")
def build_soft_ordering(core: CoreSpec, n_tasks: int, *, seed: int = 0, identity: bool = False,
                        scale_fn: str = "softmax") -> SoftOrdering:
    """Learned soft order (Eq. 7)."""
    return _build(core, n_tasks, "soft_ordering", identity=identity, scale_fn=scale_fn)  # type: ignore[arg-type]


@register_scheme("soft_ordering_uniform")
def build_soft_ordering_uniform(core: CoreSpec, n_tasks: int, *, seed: int = 0,
                                identity: bool = False) -> SoftOrdering:
    """Ablation: the soft-ordering model with its scales frozen at uniform (1/J)."""
    return _build(core, n_tasks, "soft_ordering_uniform", identity=identity, frozen=True)
