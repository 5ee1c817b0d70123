"""The update math of sharewise's three optimisers, on lists of tensors, without ``torch.optim``.

Why not ``torch.optim``: constructing a ``torch.optim.Optimizer`` (``add_param_group`` is wrapped
by ``torch._disable_dynamo``) and every ``step()`` import ``torch._dynamo``, about as long again
as ``import torch`` itself (1.5 s of a 1-step run's ~3 s on a quiet machine, issue 15). The
kernels here are the same aten operations torch's optimisers call, in the same order, so the
results are bit-identical to torch's (tested in ``tests/training/test_kernels.py``):

- ``adam_``: ``torch.optim.Adam(fused=True)`` with its defaults (betas 0.9/0.999, eps 1e-8,
  L2 weight decay): one ``_fused_adam_`` call per device and dtype.
- ``sgd_``: ``torch.optim.SGD(momentum=0.9)`` (no dampening, no Nesterov) as its ``foreach``
  path; on a CPU torch takes its per-tensor path, whose operations are the same.
- ``rmsprop_``: ``torch.optim.RMSprop`` with its defaults (alpha 0.99, eps 1e-8, no momentum,
  not centred) as its ``foreach`` path.

Every function updates ``params`` and the state lists in place; ``steps`` are float32 tensors
(one per parameter, on the parameter's device; views of a ``[T]`` tensor are fine) that count
updates. Callers pass only parameters that have a gradient.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

OPTIMIZERS = ("adam", "sgd", "rmsprop")
# The fixed hyperparameters of each kind (torch's defaults; stored with every state_dict so that a
# checkpoint says what produced it, and checked when one is loaded).
HYPERPARAMETERS: dict[str, dict[str, object]] = {
    "adam": {"betas": (0.9, 0.999), "eps": 1e-8},
    "sgd": {"momentum": 0.9, "dampening": 0.0, "nesterov": False},
    "rmsprop": {"alpha": 0.99, "eps": 1e-8, "momentum": 0.0, "centered": False},
}
BUFFERS = {"adam": ("exp_avg", "exp_avg_sq"), "sgd": ("momentum_buffer",), "rmsprop": ("square_avg",)}


def _by_device_and_dtype(params: Sequence[Tensor]) -> list[list[int]] | None:
    """Index lists of ``params`` per (device, dtype); None when they all share one (the usual case)."""
    first = params[0]
    if all(p.device == first.device and p.dtype == first.dtype for p in params):
        return None
    groups: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    for i, p in enumerate(params):
        groups.setdefault((p.device, p.dtype), []).append(i)
    return list(groups.values())


def _split(lists: Sequence[Sequence[Tensor]]) -> list[list[list[Tensor]]]:
    """``lists`` (parallel lists keyed by ``lists[0]``) cut into one piece per device and dtype."""
    index = _by_device_and_dtype(lists[0])
    if index is None:
        return [[list(x) for x in lists]]
    return [[[x[i] for i in idx] for x in lists] for idx in index]


def adam_(params: Sequence[Tensor], grads: Sequence[Tensor], exp_avgs: Sequence[Tensor],
          exp_avg_sqs: Sequence[Tensor], steps: Sequence[Tensor], *, lr: float, weight_decay: float) -> None:
    """One Adam update, as ``torch.optim.Adam(fused=True)`` (``adam._fused_adam``)."""
    if not params:
        return
    beta1, beta2 = HYPERPARAMETERS["adam"]["betas"]  # type: ignore[misc]
    for p, g, m, v, s in _split([params, grads, exp_avgs, exp_avg_sqs, steps]):
        torch._foreach_add_(s, 1)
        torch._fused_adam_(p, g, m, v, [], s, amsgrad=False, lr=lr, beta1=beta1, beta2=beta2,
                           weight_decay=weight_decay, eps=1e-8, maximize=False, grad_scale=None, found_inf=None)


def sgd_(params: Sequence[Tensor], grads: Sequence[Tensor], buffers: list[Tensor | None], *, lr: float,
         weight_decay: float) -> None:
    """One SGD update with momentum 0.9, as ``torch.optim.SGD`` (``sgd._multi_tensor_sgd``). A None
    buffer (a parameter's first update) becomes a copy of its gradient, written into ``buffers``."""
    if not params:
        return
    index = _by_device_and_dtype(params)
    for idx in ([list(range(len(params)))] if index is None else index):
        p = [params[i] for i in idx]
        g: list[Tensor] = [grads[i] for i in idx]
        if weight_decay != 0:
            g = list(torch._foreach_add(g, p, alpha=weight_decay))
        bufs = [buffers[i] for i in idx]
        if all(b is not None for b in bufs):
            torch._foreach_mul_(bufs, 0.9)  # type: ignore[arg-type]
            torch._foreach_add_(bufs, g, alpha=1.0)  # type: ignore[arg-type]
        else:
            for j, i in enumerate(idx):
                buf = buffers[i]
                if buf is None:
                    buf = buffers[i] = g[j].detach().clone()
                else:
                    buf.mul_(0.9).add_(g[j], alpha=1.0)
                bufs[j] = buf
        torch._foreach_add_(p, bufs, alpha=-lr)  # type: ignore[arg-type]


def rmsprop_(params: Sequence[Tensor], grads: Sequence[Tensor], square_avgs: Sequence[Tensor],
             steps: Sequence[Tensor], *, lr: float, weight_decay: float) -> None:
    """One RMSprop update, as ``torch.optim.RMSprop`` (``rmsprop._multi_tensor_rmsprop``)."""
    if not params:
        return
    alpha, eps = 0.99, 1e-8
    for p, g, sq, s in _split([params, grads, square_avgs, steps]):
        torch._foreach_add_(s, 1)
        if weight_decay != 0:
            g = list(torch._foreach_add(g, p, alpha=weight_decay))
        torch._foreach_mul_(sq, alpha)
        torch._foreach_addcmul_(sq, g, g, value=1 - alpha)
        avg = torch._foreach_sqrt(sq)
        torch._foreach_add_(avg, eps)
        torch._foreach_addcdiv_(p, g, avg, value=-lr)
