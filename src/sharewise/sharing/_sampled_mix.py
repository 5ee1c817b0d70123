"""One autograd node from allocation logits to every layer's mixing weights (training sample).

The reference path (``GumbelMatrix.allocation`` then ``modular.mix_weights`` per layer) is
about 27 tiny autograd nodes per forward pass (row slices, a cat, the noise add, the tempered
softmax, the straight-through bracket, a split, and sum / clamp / div per layer), each a few
microseconds forward and again backward on a CPU. Here, for layers with the same component
count (stacked as ``[L, T', C]``), they are one node of about 30 small ops with the backward
written out: measured ~3.5 % of a 4-MNISTs alternating update (``benchmarks/ab_update.py
--parts``; a first version with per-layer ops inside the node saved nothing). The forward values are exactly the reference's (z is exactly ``hard``: the
straight-through bracket ``s - stopgrad(s)`` is 0 for finite logits); the gradients agree to
float rounding (tested against the reference).

Per layer l with rows ``ids`` of logits ``[T, C, 2]`` and Gumbel noise g (drawn by the caller
with the generator, exactly as the reference draws it):

    v = logits[ids] + g;  s = softmax(v / tau)[..., 0];  z = [v_0 >= v_1] (+ s - stopgrad(s))
    w = z / max(sum_c z, 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor


def _span(ids: Sequence[int]) -> tuple[int, int] | None:
    """(first, end) when ``ids`` are consecutive (a slice selects them), else None."""
    if list(ids) == list(range(ids[0], ids[0] + len(ids))):
        return ids[0], ids[0] + len(ids)
    return None


class _SampledMixWeights(torch.autograd.Function):
    """(noise ``[L*T'*C, 2]``, tau, ids, *logits ``[T, C, 2]``) -> (z ``[L, T', C]`` (no gradient), w_1, ..., w_L)."""

    @staticmethod
    def forward(ctx: Any, noise: Tensor, tau: float, ids: list[int], *logits: Tensor) -> tuple[Tensor, ...]:
        span = _span(ids)
        rows = [lg[span[0]:span[1]] if span else lg[ids] for lg in logits]
        v = torch.stack(rows).add_(noise.view(len(logits), len(ids), -1, 2))  # [L, T', C, 2]
        hard = torch.ge(v[..., 0], v[..., 1], out=v.new_empty(v.shape[:-1]))  # z's value, [L, T', C]
        soft = torch.softmax(v.div_(tau), dim=-1)
        den = hard.sum(dim=-1, keepdim=True)  # [L, T', 1]
        d = den.clamp(min=1.0)
        w = hard / d
        ctx.save_for_backward(soft, w, d)
        ctx.tau, ctx.span, ctx.ids, ctx.n_rows = tau, span, ids, logits[0].shape[0]
        ctx.mark_non_differentiable(hard)
        ctx.set_materialize_grads(False)
        return (hard, *w.unbind(0))

    @staticmethod
    def backward(ctx: Any, _grad_hard: Tensor | None, *grad_ws: Tensor | None) -> tuple[Tensor | None, ...]:
        soft, w, d = ctx.saved_tensors
        g = torch.stack([gw if gw is not None else torch.zeros_like(w[0]) for gw in grad_ws])  # [L, T', C]
        # w = z / d, d = clamp(sum_c z, 1) (DivBackward0, ClampBackward1, SumBackward1): dw/dd = -z/d^2
        # where sum_c z >= 1; where it is 0, z = w = 0, so the term vanishes without the clamp's mask.
        gz = g / d - (g * (w / d)).sum(dim=-1, keepdim=True)
        # softmax backward with output gradient [gz, 0] (as _softmax_backward_data), then / tau
        s0, s1 = soft.unbind(-1)
        dot = gz * s0
        grad_v = torch.stack([s0 * (gz - dot), s1 * dot.neg_()], dim=-1).div_(ctx.tau)  # [L, T', C, 2]
        return (None, None, None, *_scatter_rows(grad_v, ctx.span, ctx.ids, ctx.n_rows))


def _scatter_rows(grad_v: Tensor, span: tuple[int, int] | None, ids: list[int], n_rows: int) -> list[Tensor]:
    """``[L, T', C, 2]`` -> per layer ``[T, C, 2]`` with the rows ``ids`` filled, zeros elsewhere
    (one buffer; the rows' gradient sums over repeated ids, as indexing's backward does)."""
    full = grad_v.new_zeros((grad_v.shape[0], n_rows, *grad_v.shape[2:]))
    if span is not None:
        full[:, span[0]:span[1]] = grad_v
    else:
        full.index_add_(1, torch.tensor(ids, device=full.device), grad_v)
    return list(full.unbind(0))


def sampled_mix_weights(logits: Sequence[Tensor], ids: list[int], noise: Tensor, tau: float
                        ) -> tuple[list[Tensor], list[Tensor]]:
    """Per layer the sampled allocation ``z [T', C]`` (values only, no gradient) and the mixing
    weights ``w [T', C]`` (with the straight-through gradient to ``logits``), in one node.

    ``logits``: per layer ``[T, C, 2]``, the same C in every layer; ``noise``: ``[L * T' * C, 2]``
    in the reference's flat order (layer by layer, rows ``ids``); ``tau``: the temperature."""
    hard, *ws = _SampledMixWeights.apply(noise, float(tau), list(ids), *logits)
    return list(hard.unbind(0)), ws
