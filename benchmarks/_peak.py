"""The machine's float32 matmul peak, the yardstick the benchmarks report their speed against.

Measured the way ``bench_gumbel_matrix.py`` does (a 2048^3 float32 matmul at the current thread
count, after one warm-up product), but as the best of ``reps`` timed products rather than their
mean, so a burst of load from other processes on a shared machine does not lower the peak.
"""

from __future__ import annotations

import time

import torch


def matmul_peak(n: int = 2048, reps: int = 5) -> float:
    """Best float32 FLOP/s of an ``[n, n] @ [n, n]`` product over ``reps`` runs."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up (thread pool, BLAS buffers)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best
