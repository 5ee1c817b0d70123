"""One soft-ordering depth's ReLU, dropout and per-task mix as one autograd node.

With the candidate axis innermost, depth k of Eq. 7 is

    y_t = sum_j s(t, j, k) * dropout(relu(a_t,j)),   a = the bank's pre-activations [T', M, L],

which as separate ops is five passes over ``[T', M, L]`` forward (ReLU, mask to float, mask
scale, multiply, mix) and as many backward. Here the forward is ReLU, one multiply by the 0/1
mask and the mix with the dropout scale folded into the (tiny) mixing weights; the backward uses
that ``relu(a) * keep > 0`` exactly where both the ReLU and the mask pass the gradient, so the
saved product is the only mask needed (one ``threshold_backward``). Exact up to float rounding
against ReLU, ``packed_dropout`` with the same mask, and the mix (tested).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from sharewise.sharing._exact_choice import exact_fastest


def _mix(masked: Tensor, s: Tensor) -> Tensor:
    """``[T', M, L] @ [T', L, 1] -> [T', M, 1]``: one ``bmm``, or one ``mv`` per task where that
    is faster and gives the same values (``_exact_choice``)."""
    t, m, n = masked.shape
    candidates = {
        "bmm": lambda: torch.bmm(masked, s),
        "mv": lambda: torch.stack([torch.mv(masked[i], s[i, :, 0]) for i in range(t)]).unsqueeze(-1),
    }
    name = exact_fastest(("soft_mix", t, m, n, masked.dtype), candidates, masked.device)
    return candidates[name]()


def _outer(grad: Tensor, s_row: Tensor) -> Tensor:
    """``[T', M, 1] x [T', 1, L] -> [T', M, L]``: the outer product as a K=1 ``bmm`` or a broadcast
    multiply (the same products, no sums: equal), whichever is faster here."""
    t, m, _ = grad.shape
    candidates = {"bmm": lambda: torch.bmm(grad, s_row), "broadcast": lambda: grad * s_row}
    name = exact_fastest(("soft_mix_outer", t, m, s_row.shape[-1], grad.dtype), candidates, grad.device)
    return candidates[name]()


class _ReluMaskMix(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, pre: Tensor, keep: Tensor, s: Tensor, scale: float) -> Tensor:
        masked = pre.clamp_min(0.0).mul_(keep)  # [T', M, L]
        s_scaled = s * scale  # [T', L, 1]
        ctx.save_for_backward(masked, s_scaled)
        ctx.scale = scale
        return _mix(masked, s_scaled)  # [T', M, 1]

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        masked, s_scaled = ctx.saved_tensors
        grad_pre = grad_s = None
        if ctx.needs_input_grad[2]:
            grad_s = torch.bmm(masked.transpose(1, 2), grad).mul_(ctx.scale)  # [T', L, 1]
        if ctx.needs_input_grad[0]:
            grad_pre = torch.ops.aten.threshold_backward(_outer(grad.contiguous(), s_scaled.transpose(1, 2)),
                                                         masked, 0.0)
        return grad_pre, None, grad_s, None


def relu_dropout_mix(pre: Tensor, keep: Tensor, s: Tensor, scale: float) -> Tensor:
    """``pre, keep [T', M, L]``, ``s [T', L, 1]`` -> ``[T', M, 1]`` = (relu(pre) * keep * scale) @ s."""
    device = pre.device.type
    if torch.is_autocast_enabled(device):  # as autocast runs the bmm: every operand in its dtype
        dtype = torch.get_autocast_dtype(device)
        with torch.autocast(device, enabled=False):
            return _ReluMaskMix.apply(pre.to(dtype), keep.to(dtype), s.to(dtype), scale)
    return _ReluMaskMix.apply(pre, keep, s, scale)
