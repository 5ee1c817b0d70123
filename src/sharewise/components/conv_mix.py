"""A modular layer of C small convolutions, mixed per task, as im2col + one matrix product.

The 4-MNISTs components are 4-filter convolutions on 16-image batches: at that size PyTorch's
CPU convolution (oneDNN) spends most of a training step in per-call overhead and in its weight
gradient, and ``F.unfold`` (im2col) plus the per-component mix of ``ModularLayer`` materialise
and transpose ``[C, T', B, ...]`` temporaries. Here one layer is one autograd node:

- Activations live in a *batch-innermost* layout: memory ``[ch, T', H, W, B]`` (returned to the
  caller as the ``[T', B, ch, H, W]`` view, no copy). Every patch row of im2col is then one
  contiguous run of ``Wo * B`` floats, so im2col is one strided copy (one ``as_strided``, shared
  by all C components), and the layout is channels-last for ``[ch * T', B, H, W]``, which
  ``F.avg_pool2d`` pools several times faster than the usual NCHW (see ``StackedAvgPool2d``).
- All C components' filters are one ``[C*o, i*k*k] @ [i*k*k, T'*Ho*Wo*B]`` product (one GEMM
  for all components *and* tasks), then ReLU in place and the per-task mean of the active
  components (one ``[1, C] @ [C, M]`` product per task).
- The backward is written out: the mix, ReLU, bias and weight gradients are four products /
  reductions over the saved columns, and the input gradient (col2im) is one ``index_add_``.
- A following ``p x p`` average pooling can run inside the op (``pool``), and a network of
  such layers can run as one op (:func:`conv_mix_chain`): fewer autograd nodes and views.

Exact up to float rounding against ``F.conv2d`` and the loop reference (tested to ~1e-6).
Measured per layer against the conv path in ``benchmarks/bench_gumbel_matrix.py --layers``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def to_stacked_layout(x: Tensor) -> Tensor:
    """``[T', B, c, H, W]`` (any strides) -> memory ``[c, T', H, W, B]``, contiguous (a view if it already is)."""
    m = x.permute(2, 0, 3, 4, 1)
    return m if m.is_contiguous() else m.contiguous()


def from_stacked_layout(m: Tensor) -> Tensor:
    """Memory ``[c, T', H, W, B]`` -> the ``[T', B, c, H, W]`` view the modular network passes on."""
    return m.permute(1, 4, 0, 2, 3)


def _im2col(m: Tensor, k: int, ones_row: bool = False) -> Tensor:
    """m ``[i, T', H, W, B]`` contiguous -> cols ``[i*k*k (+1), T'*Ho*Wo*B]`` (rows in (i, kh, kw)
    order; ``ones_row``: a last row of ones, so that a bias column of the weights is in the GEMM)."""
    i, t, h, w, b = m.shape
    ho, wo = h - k + 1, w - k + 1
    si, st, sh, sw, _ = m.stride()
    patches = m.as_strided((i, k, k, t, ho, wo, b), (si, sh, sw, st, sh, sw, 1), m.storage_offset())
    n = t * ho * wo * b
    cols = torch.empty((i * k * k + int(ones_row), n), dtype=m.dtype, device=m.device)
    cols[:i * k * k].view(i, k, k, t, ho, wo, b).copy_(patches)
    if ones_row:
        cols[-1].fill_(1.0)
    return cols


_COL_INDEX: dict[tuple, Tensor] = {}  # (shape, k, device) -> the im2col gather index


def _col_index(m: Tensor, k: int) -> Tensor:
    """For every element of ``_im2col(m, k)`` (flattened), its position in ``m`` (flattened)."""
    key = (tuple(m.shape), k, m.device)
    idx = _COL_INDEX.get(key)
    if idx is None:
        if len(_COL_INDEX) > 32:  # shapes change only with the batch size or the task count
            _COL_INDEX.clear()
        pos = torch.arange(m.numel(), device=m.device).view(m.shape)
        idx = _COL_INDEX[key] = _im2col(pos, k).reshape(-1)
    return idx


def _layer_forward(m: Tensor, weight: Tensor, bias: Tensor, w: Tensor, c: int, relu: bool, pool: int
                   ) -> tuple[Tensor, list[Tensor], tuple]:
    """One fused layer on memory ``[i, T', H, W, B]``: (output memory, tensors and metadata for
    :func:`_layer_backward`). The bias is a last column of the weights against a row of ones in
    the columns: the forward GEMM adds it, the weight-gradient GEMM returns its gradient."""
    i, t, h, wd, b = m.shape
    co, k = weight.shape[0], weight.shape[-1]
    o = co // c
    ho, wo = h - k + 1, wd - k + 1
    cols = _im2col(m, k, ones_row=True)  # [i*k*k + 1, T'*M], M = Ho*Wo*B
    wb = torch.cat([weight.view(co, -1), bias.view(co, 1)], dim=1)  # [C*o, i*k*k + 1]
    y = torch.mm(wb, cols)  # [C*o, T'*M]
    if relu:
        y.clamp_(min=0.0)
    out = _mix(y.view(c, o, t, -1), w).view(o, t, ho, wo, b)
    saved = [cols, y, wb, w, *([out] if pool > 1 else [])]
    meta = (i, t, h, wd, b, k, c, o, relu, pool)
    return (_avg_pool(out, pool) if pool > 1 else out), saved, meta


def _layer_backward(saved: Sequence[Tensor], meta: tuple, grad: Tensor, need_m: bool, need_weight: bool,
                    need_bias: bool, need_w: bool) -> tuple[Tensor | None, ...]:
    """Gradients (input memory, weight, bias, w) of :func:`_layer_forward` given the output's."""
    cols, y, wb, w, *pre_pool = saved
    i, t, h, wd, b, k, c, o, relu, pool = meta
    if pool > 1:
        grad = _avg_pool_backward(grad, pre_pool[0], pool)
    g = grad.contiguous().view(o, t, -1)  # [o, T', M]
    yv = y.view(c, o, t, -1)
    grad_w = None
    if need_w:
        if t == 1:
            grad_w = torch.mv(y.view(c, -1), g.view(-1)).view(1, c)
        else:
            grad_w = (yv * g).sum(dim=(1, 3)).t()  # [T', C]
    grad_m = grad_weight = grad_bias = None
    if need_m or need_weight or need_bias:
        gy = g.unsqueeze(0) * w.t().reshape(c, 1, t, 1)  # [C, o, T', M]
        if relu:
            gy = torch.ops.aten.threshold_backward.grad_input(gy, yv, 0.0, grad_input=gy)  # in place: no new [C, o, T', M]
        gy = gy.reshape(c * o, -1)  # [C*o, T'*M]
        kk = i * k * k
        if need_weight or need_bias:
            # [K+1, C*o] then transposed: measured 1.5x faster than gy @ cols.t() at 4-MNISTs sizes
            gwb = torch.mm(cols, gy.t()).t()  # [C*o, i*k*k + 1]
            grad_weight = gwb[:, :kk].reshape(c * o, i, k, k) if need_weight else None
            grad_bias = gwb[:, kk].contiguous() if need_bias else None
        if need_m:  # col2im: one index_add_ (measured 1.5-6x faster than k*k slice additions)
            gcols = torch.mm(wb[:, :kk].t(), gy)  # [i*k*k, T'*M]
            grad_m = grad.new_zeros((i, t, h, wd, b))
            grad_m.view(-1).index_add_(0, _col_index(grad_m, k), gcols.view(-1))
    return grad_m, grad_weight, grad_bias, grad_w


class _ConvReluMix(torch.autograd.Function):
    """out ``[o, T', Ho, Wo, B]`` = sum_c w[t, c] act(conv_c(x_t)); x memory ``[i, T', H, W, B]``
    (then average-pooled ``pool`` x ``pool`` where ``pool`` > 1)."""

    @staticmethod
    def forward(ctx: Any, m: Tensor, weight: Tensor, bias: Tensor, w: Tensor, n_components: int,
                relu: bool, pool: int = 1) -> Tensor:
        out, saved, ctx.meta = _layer_forward(m, weight, bias, w, n_components, relu, pool)
        ctx.save_for_backward(*saved)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        grads = _layer_backward(ctx.saved_tensors, ctx.meta, grad, *ctx.needs_input_grad[:4])
        return (*grads, None, None, None)


class _ConvMixChain(torch.autograd.Function):
    """Several fused layers in a row as one autograd node: memory ``[i, T', H, W, B]`` in and out,
    ``specs`` per layer (n_components, relu, pool), ``params`` per layer (weight, bias, w)."""

    @staticmethod
    def forward(ctx: Any, m: Tensor, specs: tuple, *params: Tensor) -> Tensor:
        saved: list[Tensor] = []
        ctx.metas = []
        for l, (c, relu, pool) in enumerate(specs):
            m, tensors, meta = _layer_forward(m, *params[3 * l:3 * l + 3], c, relu, pool)
            saved += tensors
            ctx.metas.append((meta, len(tensors)))
        ctx.save_for_backward(*saved)
        return m

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        saved, needs = ctx.saved_tensors, ctx.needs_input_grad
        grads: list[Tensor | None] = [None] * (len(needs) - 2)
        end = len(saved)
        for l in range(len(ctx.metas) - 1, -1, -1):
            meta, n = ctx.metas[l]
            need_m = needs[0] or any(needs[2:2 + 3 * l])  # something before layer l wants a gradient
            grad_m, *grads[3 * l:3 * l + 3] = _layer_backward(saved[end - n:end], meta, grad, need_m,
                                                              *needs[2 + 3 * l:5 + 3 * l])
            end -= n
            if grad_m is None:  # nothing before layer l wants a gradient
                return (None, None, *grads)
            grad = grad_m
        return (grad, None, *grads)


def _mix(y: Tensor, w: Tensor) -> Tensor:
    """y ``[C, o, T', M]``, w ``[T', C]`` -> ``[o, T', M]`` = sum_c w[t, c] y[c, :, t]."""
    c, o, t, m = y.shape
    if t == 1:
        return torch.mm(w, y.view(c, -1)).view(o, t, m)
    out = y[0] * w[:, 0].view(1, t, 1)
    for j in range(1, c):
        out.addcmul_(y[j], w[:, j].view(1, t, 1))
    return out


def _channels_last(m: Tensor) -> Tensor:
    """Memory ``[c, T', H, W, B]`` -> the channels-last ``[c*T', B, H, W]`` view (no copy)."""
    c, t, h, w, b = m.shape
    return m.view(c * t, h, w, b).permute(0, 3, 1, 2)


def _avg_pool(out: Tensor, p: int) -> Tensor:
    """``[o, T', Ho, Wo, B]`` -> ``[o, T', Ho // p, Wo // p, B]``: ``F.avg_pool2d(x, p)`` (the
    kernel :class:`StackedAvgPool2d` runs, on the same channels-last view: the same values)."""
    o, t = out.shape[:2]
    y = F.avg_pool2d(_channels_last(out), p)  # channels-last [o*T', B, Ho', Wo']
    return y.permute(0, 2, 3, 1).view(o, t, *y.shape[2:], y.shape[1])


def _avg_pool_backward(grad: Tensor, out: Tensor, p: int) -> Tensor:
    """The gradient of :func:`_avg_pool` with respect to ``out`` (same layout as ``out``)."""
    g = torch.ops.aten.avg_pool2d_backward(_channels_last(grad.contiguous()), _channels_last(out), [p, p], [p, p],
                                           [0, 0], False, True, None)
    return g.permute(0, 2, 3, 1).view(out.shape)


def conv_relu_mix(x: Tensor, weight: Tensor, bias: Tensor, w: Tensor, padding: int = 0, relu: bool = True,
                  pool: int = 1) -> Tensor:
    """x ``[T', B, i, H, W]`` (any strides), weight ``[C*o, i, k, k]``, bias ``[C*o]``, w ``[T', C]``
    -> ``[T', B, o, Ho, Wo]`` (a view of batch-innermost memory): the per-task mix of C convs.

    ``pool`` > 1: then ``pool`` x ``pool`` average pooling (stride ``pool``, as ``F.avg_pool2d``)
    inside the same autograd node (the network's pooling after the layer, on the same
    channels-last view with the same kernel as :class:`StackedAvgPool2d`: the same values). It
    saves the pooling's autograd node and layout views; measured ~30 us per pooled 4-MNISTs
    layer in isolation, within the noise of a whole update."""
    m = to_stacked_layout(x)
    if padding:
        m = F.pad(m, (0, 0, padding, padding, padding, padding))
    device = m.device.type
    if torch.is_autocast_enabled(device):  # as autocast runs a convolution: every operand in its dtype
        dtype = torch.get_autocast_dtype(device)
        with torch.autocast(device, enabled=False):
            out = _ConvReluMix.apply(m.to(dtype), weight.to(dtype), bias.to(dtype), w.to(dtype), w.shape[1], relu,
                                     pool)
    else:
        out = _ConvReluMix.apply(m, weight, bias, w, w.shape[1], relu, pool)
    return from_stacked_layout(out)


def conv_mix_chain(x: Tensor, layers: Sequence[tuple[Tensor, Tensor, Tensor, bool, int]]) -> Tensor:
    """Several :func:`conv_relu_mix` layers (no padding) in a row, each optionally pooled, as one
    autograd node: ``layers`` = (weight, bias, w, relu, pool) per layer; x ``[T', B, i, H, W]``.

    The same values as the layers one by one (tested bit-equal), but the batch-innermost memory
    passes from layer to layer without the layout views (an autograd node each) and one Function
    call does the whole network, forward and backward; measured ~2 % of a 4-MNISTs alternating
    update (``benchmarks/ab_update.py --parts``, on a loaded 2-core machine)."""
    specs = tuple((w.shape[1], relu, pool) for _, _, w, relu, pool in layers)
    params = [p for weight, bias, w, _, _ in layers for p in (weight, bias, w)]
    return from_stacked_layout(_ConvMixChain.apply(to_stacked_layout(x), specs, *params))


class StackedAvgPool2d(nn.AvgPool2d):
    """``nn.AvgPool2d`` that takes stacked tasks ``[T', B, c, H, W]`` in any memory layout.

    On the batch-innermost layout of :func:`conv_relu_mix` it pools the channels-last view
    ``[c*T', B, H, W]`` (no copy; measured 4-6x faster than pooling NCHW on this CPU) and
    returns the same layout; other layouts are pooled as ``[T'*B, c, H, W]``. A 4-D input (an
    exported single-task network) is pooled as by ``nn.AvgPool2d``.
    """

    stacked_tasks = True  # ModularNetwork passes [T', B, ...] as is

    @property
    def fold_size(self) -> int | None:
        """p where this is plain p x p pooling with stride p (then a fused conv layer can pool
        inside its own op, see :func:`conv_relu_mix`); None for any other configuration."""
        k, s, pad = self.kernel_size, self.stride, self.padding
        k, s, pad = (k if isinstance(k, int) else k[0] if len(set(k)) == 1 else -1,
                     s if isinstance(s, int) else s[0] if len(set(s)) == 1 else -2,
                     pad if isinstance(pad, int) else pad[0] if len(set(pad)) == 1 else -1)
        if k == s and k > 1 and pad == 0 and not self.ceil_mode and self.divisor_override is None:
            return k
        return None

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 5:
            return super().forward(x)
        t, b, c, h, w = x.shape
        m = x.permute(2, 0, 3, 4, 1)  # [c, T', H, W, B]
        if m.is_contiguous():
            y = super().forward(m.reshape(c * t, h, w, b).permute(0, 3, 1, 2))  # channels-last [c*T', B, h, w]
            y = y.permute(0, 2, 3, 1)  # [c*T', h', w', B]
            return from_stacked_layout(y.reshape(c, t, *y.shape[1:]))
        y = super().forward(x.reshape(t * b, c, h, w))
        return y.view(t, b, *y.shape[1:])
