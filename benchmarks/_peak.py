"""The machine's float32 matmul peak, the yardstick the benchmarks report their speed against.

Measured the way ``bench_gumbel_matrix.py`` does (a 2048^3 float32 matmul at the current thread
count, after one warm-up product), but as the best of ``reps`` timed products rather than their
mean, so a burst of load from other processes on a shared machine does not lower the peak.

The peak is the faster of torch's BLAS (``a @ b``) and, where torch has it, oneDNN's linear
operator on the same product: sharewise's large dense products run through oneDNN
(``sharewise.components.gemm``), which on this project's AMD CPU outran MKL, so a peak measured
with MKL alone would let a step exceed "100 %".
"""

from __future__ import annotations

import time

import torch


def matmul_peak(n: int = 2048, reps: int = 5) -> float:
    """Best float32 FLOP/s of an ``[n, n] @ [n, n]`` product over ``reps`` runs."""
    from sharewise.components import gemm

    a, b = torch.randn(n, n), torch.randn(n, n)
    products = [lambda: a @ b]
    if gemm.onednn_available():
        b_t = b.t().contiguous()
        products.append(lambda: torch.ops.mkldnn._linear_pointwise(a, b_t, None, "none", [], ""))
    best = float("inf")
    for product in products:
        product()  # warm-up (thread pool, BLAS buffers, oneDNN's kernel)
        for _ in range(reps):
            t0 = time.perf_counter()
            product()
            best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best
