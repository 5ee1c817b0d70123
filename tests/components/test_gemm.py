"""Dense layers' matrix products through oneDNN: addmm's values and gradients, deterministic, off by env."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sharewise.components import gemm

SRC = Path(__file__).resolve().parents[2] / "src"


def _inputs(n: int, d_in: int, d_out: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, d_in, generator=g).requires_grad_(), torch.randn(d_in, d_out, generator=g).requires_grad_(),
            torch.randn(d_out, generator=g).requires_grad_())


@pytest.mark.parametrize("shape", [(640, 64, 256), (64, 32, 64), (7, 5, 3)])
def test_linear_equals_addmm_in_value_and_gradient(shape: tuple[int, int, int]) -> None:
    x, w, b = _inputs(*shape)
    y = gemm.linear(x, w, b)
    assert gemm.onednn_available() == torch.backends.mkldnn.is_available()  # the path under test is taken
    large = shape[0] * shape[1] * shape[2] >= gemm.LINEAR_MIN_MACS
    assert (type(y.grad_fn).__name__ == "_LinearBackward") == (gemm.onednn_available() and large)
    ref = torch.addmm(b, x, w)
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)
    grad = torch.randn_like(y)
    ours = torch.autograd.grad(y, (x, w, b), grad)
    theirs = torch.autograd.grad(ref, (x, w, b), grad)
    for a, r in zip(ours, theirs):  # sums of up to 640 products of unit normals: float32 rounding ~1e-5
        torch.testing.assert_close(a, r, rtol=1e-5, atol=1e-4)
    assert torch.equal(ours[2], theirs[2])  # the bias gradient: addmm's own sum


def test_linear_is_deterministic_and_follows_in_place_weight_updates() -> None:
    x, w, b = (t.detach() for t in _inputs(640, 64, 256))
    first = gemm.linear(x, w, b)
    assert torch.equal(first, gemm.linear(x, w, b))
    grads = [torch.autograd.grad(gemm.linear(*(t.requires_grad_() for t in (x, w, b))), (x, w, b), first)
             for _ in range(2)]
    assert all(torch.equal(a, c) for a, c in zip(*grads))
    for t in (x, w, b):
        t.requires_grad_(False)
    with torch.no_grad():
        w.mul_(0.5)  # an optimiser step: no result may come from a cached copy of the old weights
    torch.testing.assert_close(gemm.linear(x, w, b), torch.addmm(b, x, w), rtol=1e-5, atol=1e-5)


def test_a_strided_weight_view_and_the_fallbacks() -> None:
    x, _, _ = (t.detach() for t in _inputs(4096, 32, 32))
    bank_weight = torch.randn(32, 3, 32)
    w = bank_weight.unbind(1)[1]  # a layer of a [in, L, out] bank: not contiguous
    b = torch.randn(32)
    # oneDNN runs a strided weight through a reference kernel (~1000x slower): addmm takes it
    y = gemm.linear(x.requires_grad_(), w, b)
    assert type(y.grad_fn).__name__ == "AddmmBackward0" and torch.equal(y, torch.addmm(b, x, w))
    x.requires_grad_(False)
    x64, w64, b64 = x.double(), w.double(), b.double()  # other dtypes: addmm itself
    assert torch.equal(gemm.linear(x64, w64, b64), torch.addmm(b64, x64, w64))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = gemm.linear(x, w, b)
    assert y.dtype == torch.bfloat16  # autocast's addmm


def test_the_backend_is_recorded_and_the_environment_turns_it_off() -> None:
    assert gemm.gemm_backend().startswith("onednn" if gemm.onednn_available() else "torch")
    code = "from sharewise.components import gemm; print(gemm.onednn_available(), gemm.gemm_backend())"
    env = {**os.environ, "SHAREWISE_GEMM": "torch", "PYTHONPATH": str(SRC)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False torch (SHAREWISE_GEMM=torch)"


def test_task_linear_equals_baddbmm_and_loops_only_over_large_gradient_free_products() -> None:
    g = torch.Generator().manual_seed(1)
    x, w, b = (torch.randn(3, 64, 784, generator=g), torch.randn(3, 784, 64, generator=g),
               torch.randn(3, 1, 64, generator=g))
    assert 64 * 784 * 64 >= gemm.TASK_LOOP_MIN_MACS
    y = gemm.task_linear(x, w, b)  # frozen-encoder sizes, nothing needs a gradient: the per-task loop
    torch.testing.assert_close(y, torch.baddbmm(b, x, w), rtol=1e-5, atol=1e-4)
    assert torch.equal(y, gemm.task_linear(x, w, b))
    w.requires_grad_()
    y_grad = gemm.task_linear(x, w, b)  # a gradient is needed: baddbmm and its backward
    assert type(y_grad.grad_fn).__name__ == "BaddbmmBackward0"
    assert torch.equal(y_grad, torch.baddbmm(b, x, w))
    with torch.no_grad():
        torch.testing.assert_close(gemm.task_linear(x, w, b), y)
    small = (torch.randn(3, 8, 8), torch.randn(3, 8, 8), torch.randn(3, 1, 8))  # below the threshold: baddbmm
    assert torch.equal(gemm.task_linear(*small), torch.baddbmm(small[2], small[0], small[1]))


def test_flop_counter_counts_the_onednn_products() -> None:
    from torch.utils.flop_counter import FlopCounterMode

    gemm.count_flops_of_onednn()  # before the mode is made: it copies the formulas then
    x, w, b = _inputs(640, 64, 256)
    with FlopCounterMode(display=False) as ours:
        gemm.linear(x, w, b).sum().backward()
    with FlopCounterMode(display=False) as reference:
        torch.addmm(b, x, w).sum().backward()
    assert ours.get_total_flops() == reference.get_total_flops() == 3 * 2 * 640 * 64 * 256
