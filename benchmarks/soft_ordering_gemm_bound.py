"""How much of a dense soft-ordering step is GEMM: the ceiling on its speed-up over the Eq. 7 loop.

    .venv/bin/python benchmarks/soft_ordering_gemm_bound.py [--tasks 10,45] [--rounds 9]

At the MNIST-pairs shapes of ``bench_soft_ordering.py`` (frozen 784 -> 64 encoders, four 64-wide
layers per depth, four depths, batch 64 per task) it times, interleaved in one process: the
stacked step's GEMMs alone (the encoders' products, per depth the forward product and the weight
gradient, and the input gradient at all depths but the first, whose input is the frozen encoders'
output; each through the library the step uses, ``sharewise.components.gemm``), sharewise's
stacked step (fused Adam) and the Eq. 7 loop. It prints the
loop / step ratio, the GEMMs' share of the step, and the ratio the step would reach if only its
GEMMs remained: everything else (ReLU, dropout and mix, the mask draw, heads, loss, Adam, op
dispatch) is what separates the two.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_soft_ordering as bench  # noqa: E402
from _timing import interleaved_seconds  # noqa: E402

from sharewise.components import gemm  # noqa: E402
from sharewise.training.allocator import keep_freed_memory  # noqa: E402


def gemms_only(n_tasks: int, batch: int = 64, width: int = 64, layers: int = 4, depth: int = 4) -> Callable[[], None]:
    """The step's products, through the same library as the step (``sharewise.components.gemm``:
    oneDNN where it applies, else torch's BLAS)."""
    enc_x, enc_w = torch.rand(n_tasks, batch, 784), torch.rand(n_tasks, 784, width)
    enc_b = torch.rand(n_tasks, 1, width)
    h, w, bias = torch.rand(n_tasks * batch, width), torch.rand(width, width * layers), torch.rand(width * layers)
    grad = torch.rand(n_tasks * batch, width * layers)
    onednn = gemm.onednn_available()

    @torch.no_grad()
    def step() -> None:
        gemm.task_linear(enc_x, enc_w, enc_b)  # the frozen encoders
        for _ in range(depth):
            gemm.linear(h, w, bias)  # forward
            gemm._onednn(h.t().contiguous(), grad.t(), None) if onednn else torch.mm(h.t(), grad)  # weight gradient
        for _ in range(depth - 1):
            gemm._onednn(grad, w, None) if onednn else torch.mm(grad, w.t())  # input gradient

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="10,45")
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, allocator {keep_freed_memory()}; median of {args.rounds} "
          f"rounds x 10 steps", flush=True)
    for n_tasks in (int(t) for t in args.tasks.split(",")):
        cfg = bench.mnist_pairs(n_tasks)
        torch.manual_seed(0)
        xs = [torch.rand(cfg.batch, d) for d in cfg.in_dims]
        ys = [torch.randint(0, 2, (cfg.batch,)) for _ in cfg.in_dims]
        steps = {"gemms": gemms_only(n_tasks), "stacked": bench.stacked_step(cfg, xs, ys, fused=True),
                 "loop": bench.reference_step(cfg, xs, ys)}
        t = {k: statistics.median(v) for k, v in interleaved_seconds(steps, args.rounds, 10, warmup=3).items()}
        print(f"T={n_tasks}: GEMMs {1e3 * t['gemms']:.2f} ms, stacked step {1e3 * t['stacked']:.2f} ms, Eq. 7 loop "
              f"{1e3 * t['loop']:.2f} ms; speed-up {t['loop'] / t['stacked']:.2f}x; GEMMs "
              f"{100 * t['gemms'] / t['stacked']:.0f} % of the step; with only the GEMMs left: "
              f"{t['loop'] / t['gemms']:.2f}x", flush=True)


if __name__ == "__main__":
    main()
