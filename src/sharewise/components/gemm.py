"""The dense layers' matrix products, through oneDNN on a CPU where it is faster than torch's BLAS.

``x @ w + b`` for a dense bank's layers (``DenseLayerBank``: soft ordering's one GEMM per depth,
parallel ordering's chain) runs on a CPU through ``torch.addmm``, i.e. the BLAS torch was built
with (MKL in the x86 wheels). On this project's CPU (AMD EPYC with AVX-512; MKL does not use its
AVX-512 paths on AMD) the same products through oneDNN, which torch also ships (its
``mkldnn._linear_pointwise`` operator, the one ``torch.compile`` emits for CPU linear layers),
ran at 76-166 against 39-59 GFLOP/s for the forward ``[640, 64] @ [64, 256]``, 140-168 against
85-87 GFLOP/s for the input gradient and 158 against 90 GFLOP/s for the weight gradient (one
thread; docs/results.md §8.0g).

:func:`linear` is a custom autograd function: forward ``x @ w + b``, backward ``grad @ w.T`` and
``x.T @ grad`` through oneDNN (``x.T`` copied to contiguous memory first), ``grad.sum(0)`` for the
bias. The values are those of ``addmm`` up to float rounding (the forward was bit-identical at the
sizes tested; the gradients differ in the last bits), and deterministic: the same inputs give the
same bits every call (tested). It is used only where it applies, else ``addmm`` runs: float32 CPU
tensors, no autocast, torch built with oneDNN, contiguous operands, and a product of at least
``LINEAR_MIN_MACS`` multiply-adds (a fixed size rule, so a shape always takes one path). A weight
that is a strided view (one layer of a bank's ``[in, L, out]`` tensor, as parallel ordering reads
it) sends oneDNN to a reference kernel: ``[5000, 64] @ [64, 64]`` took 776 ms against 0.8 ms for
the same weight contiguous, so strided operands keep ``addmm``. ``SHAREWISE_GEMM=torch`` turns it
off (e.g. to compare with a plain PyTorch model bit for bit); ``run.json`` records which
(``meta.gemm``).

:func:`task_linear` is the per-task product of stacked encoders and heads, ``[T, B, in] @ [T, in,
out]``: one ``baddbmm``, or, where nothing needs a gradient (frozen encoders, evaluation) and each
task's product is large, one oneDNN product per task: for the MNIST-pairs encoders (64 x 784 x 64
per task, T = 10) the loop took 0.61-0.74 ms against 1.0-1.6 ms for the ``baddbmm``, while at
64 x 64 x 64 per task the loop's per-call cost made it 3x slower than the ``baddbmm`` (one
thread, §8.0g). The rule is a fixed size threshold, not a timing made at run time, so the same
inputs always take the same path.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Any

import torch
from torch import Tensor


@functools.lru_cache(maxsize=1)
def onednn_available() -> bool:
    """Whether this torch has the oneDNN linear operator on the CPU (and it is not turned off)."""
    if os.environ.get("SHAREWISE_GEMM", "").strip().lower() == "torch":
        return False
    if not torch.backends.mkldnn.is_available():
        return False
    return hasattr(torch.ops.mkldnn, "_linear_pointwise")


def gemm_backend() -> str:
    """For ``run.json``: which library the dense layers' CPU matrix products use."""
    if onednn_available():
        return "onednn (float32 CPU dense layers)"
    off = os.environ.get("SHAREWISE_GEMM", "").strip().lower() == "torch"
    return "torch (SHAREWISE_GEMM=torch)" if off else "torch (no oneDNN linear in this build)"


_flops_counted = False


def count_flops_of_onednn() -> None:
    """Teach ``torch.utils.flop_counter`` the oneDNN operator's FLOPs (it knows only aten's
    products). A ``FlopCounterMode`` copies the formulas when it is made, so call this before
    making one; the benchmarks do. Idempotent."""
    global _flops_counted
    if _flops_counted:
        return
    from torch.utils.flop_counter import flop_registry, register_flop_formula

    target = torch.ops.mkldnn._linear_pointwise
    if target not in flop_registry:
        @register_flop_formula(target)
        def _linear_flops(x_shape: Any, w_shape: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
            rows = 1
            for size in x_shape[:-1]:
                rows *= size
            return 2 * rows * x_shape[-1] * w_shape[0]
    _flops_counted = True


def _onednn(x: Tensor, w_t: Tensor, b: Tensor | None) -> Tensor:
    """``x @ w_t.T + b`` (``w_t [out, in]``) through oneDNN."""
    return torch.ops.mkldnn._linear_pointwise(x, w_t, b, "none", [], "")


class _Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, w: Tensor, b: Tensor) -> Tensor:  # x [N, in], w [in, out], b [out]
        ctx.save_for_backward(x, w)
        return _onednn(x, w.t(), b)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, w = ctx.saved_tensors
        grad = grad.contiguous()
        grad_x = _onednn(grad, w, None) if ctx.needs_input_grad[0] else None  # grad @ w.T
        # x.T @ grad, with x.T made contiguous (a strided input runs oneDNN's reference kernel)
        grad_w = _onednn(x.t().contiguous(), grad.t(), None) if ctx.needs_input_grad[1] else None
        grad_b = grad.sum(0) if ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b


# Multiply-adds of one product from which oneDNN is used: the gain was measured at 10.5 M (soft
# ordering's [640, 64] @ [64, 256]); at 2.6 M (UCI-10's [640, 32] @ [32, 128], the LibMTL workload's
# [640, 64] @ [64, 64]) none showed, and at 0.26 M the custom function's own cost made it 2x slower.
LINEAR_MIN_MACS = 1 << 22


def linear(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """``x [N, in] @ w [in, out] + b [out]`` -> ``[N, out]``, as ``torch.addmm(b, x, w)``."""
    if (x.device.type == "cpu" and x.dtype == w.dtype == b.dtype == torch.float32 and x.dim() == 2
            and x.is_contiguous() and w.is_contiguous()
            and x.shape[0] * x.shape[1] * w.shape[1] >= LINEAR_MIN_MACS
            and not torch.is_autocast_enabled("cpu") and onednn_available()):
        return _Linear.apply(x, w, b)
    return torch.addmm(b, x, w)


# Multiply-adds per task from which a loop of oneDNN products beats one baddbmm. Measured (one
# thread, partly under load): 0.26 M per task 3x slower, 1.05 M 0.91x, 2.1 M 1.31x, 3.2 M 1.27x quiet
# (the MNIST-pairs encoders, §8.0g); 2 M keeps the loop where it was faster in every measurement.
TASK_LOOP_MIN_MACS = 1 << 21


def task_linear(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """``x [T, B, in] @ w [T, in, out] + b [T, 1, out]`` -> ``[T, B, out]``, as ``torch.baddbmm(b, x, w)``."""
    t, n, d_in = x.shape
    if (x.device.type == "cpu" and x.dtype == w.dtype == b.dtype == torch.float32
            and x.is_contiguous() and w.is_contiguous() and n * d_in * w.shape[-1] >= TASK_LOOP_MIN_MACS
            and onednn_available()
            and not torch.is_autocast_enabled("cpu")
            and not (torch.is_grad_enabled() and (x.requires_grad or w.requires_grad or b.requires_grad))):
        w_t = w.transpose(1, 2)  # [T, out, in]
        return torch.stack([_onednn(x[i], w_t[i], b[i, 0]) for i in range(t)])
    return torch.baddbmm(b, x, w)


# A flop counter loaded before this module counts oneDNN from the start (importing it here would
# cost ~2 s of every run's start; otherwise call count_flops_of_onednn before making a counter).
if "torch.utils.flop_counter" in sys.modules:
    count_flops_of_onednn()
