"""Soft ordering's per-task mix of the layers, on rows that hold every layer's output side by side.

A dense bank's one GEMM writes, for each row (one sample of one task), the L layers' outputs one
after another: ``[T', B, L, W]``. Depth k of Eq. 7 mixes them with the task's scales,

    y[t, b] = sum_j s(t, j, k) * h[t, b, j],   h = dropout(relu(pre)),

which :func:`mix_layers` computes as L multiply-adds over ``[T', B, W]`` slices (each a
contiguous run of W values): measured 3-6x faster than the batched matrix-vector product over
an ``[T', B*W, L]`` layout this replaced (L = 4 innermost defeated vectorisation there, and the
bank's weights had to be permuted into that layout at every step).

:func:`relu_dropout_mix` makes ReLU, dropout and the mix of a depth one autograd node. As separate
ops that is five passes over ``[T', B, L, W]`` forward (ReLU, mask to float, mask scale,
multiply, mix) and as many backward. Here the forward is ReLU, one multiply by the 0/1 mask and
the mix with the dropout scale folded into the (tiny) mixing weights; the backward uses that
``relu(a) * keep > 0`` exactly where both the ReLU and the mask pass the gradient, so the saved
product is the only mask needed (one ``threshold_backward``). Exact up to float rounding against
ReLU, ``packed_dropout`` with the same mask, and the mix (tested).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def mix_layers(h: Tensor, s: Tensor) -> Tensor:
    """``h [T', B, J, *f]``, ``s [T', J]`` -> ``[T', B, *f]`` = ``sum_j s[t, j] * h[t, :, j]``."""
    shape = (s.shape[0],) + (1,) * (h.dim() - 2)  # [T', 1, 1, ...] against the [T', B, *f] slices
    y = h.select(2, 0) * s[:, 0].view(shape)
    for j in range(1, h.shape[2]):
        y = y.addcmul_(h.select(2, j), s[:, j].view(shape))
    return y


class _ReluMaskMix(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, pre: Tensor, keep: Tensor, s: Tensor, scale: float) -> Tensor:
        masked = pre.clamp_min(0.0).mul_(keep)  # [T', B, L, W]
        s_scaled = s * scale  # [T', L]
        ctx.save_for_backward(masked, s_scaled)
        ctx.scale = scale
        return mix_layers(masked, s_scaled)  # [T', B, W]

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        masked, s_scaled = ctx.saved_tensors
        grad_rows = grad.unsqueeze(2)  # [T', B, 1, W]
        grad_pre = grad_s = None
        if ctx.needs_input_grad[2]:
            grad_s = (masked * grad_rows).sum((1, 3)).mul_(ctx.scale)  # [T', L]
        if ctx.needs_input_grad[0]:
            grad_pre = torch.ops.aten.threshold_backward(grad_rows * s_scaled[:, None, :, None], masked, 0.0)
        return grad_pre, None, grad_s, None


def relu_dropout_mix(pre: Tensor, keep: Tensor, s: Tensor, scale: float) -> Tensor:
    """``pre, keep [T', B, L, W]``, ``s [T', L]`` -> ``[T', B, W]`` = mix of relu(pre) * keep * scale."""
    device = pre.device.type
    if torch.is_autocast_enabled(device):  # as autocast runs a matmul: every operand in its dtype
        dtype = torch.get_autocast_dtype(device)
        with torch.autocast(device, enabled=False):
            return _ReluMaskMix.apply(pre.to(dtype), keep.to(dtype), s.to(dtype), scale)
    return _ReluMaskMix.apply(pre, keep, s, scale)
