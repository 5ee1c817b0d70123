"""Gumbel-Matrix training step: stacked execution vs a loop over tasks and components.

    .venv/bin/python benchmarks/bench_gumbel_matrix.py [--steps 5] [--quick]

One training step = sample allocations, forward, mean-square loss, backward, Adam step on the
model and the allocation logits. Configurations: 4-MNISTs (T=4, batch 16 per task, 28x28, 3
modular layers x 4 components of 4-filter convs) and a reduced Omniglot-20 (T=20, batch 16,
48 channels, 7 components x 8 layers, 14x14 images instead of 105x105). Each line prints the
milliseconds per step of every execution path, ``speed-up: <ratio>x`` of the chosen ('auto')
path over the reference loop, and the fraction of the machine's float32 matmul peak that path
reaches (FLOPs counted by ``torch.utils.flop_counter``; peak measured with a 2048^3 matmul).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from sharewise.components.modular import loop_forward
from sharewise.components.modular_sets import build_modular_network
from sharewise.sharing.gumbel_matrix import GumbelMatrix


def matmul_peak(n: int = 2048, reps: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t0)  # FLOP/s


def make_step(scheme: GumbelMatrix, x: torch.Tensor, reference: bool) -> Callable[[], None]:
    opt = torch.optim.Adam([{"params": list(scheme.network.parameters()), "lr": 1e-3},
                            {"params": scheme.architecture_parameters(), "lr": 1e-3}])

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        if reference:
            y = loop_forward(scheme.network, x, scheme.allocation())
        else:
            y = scheme(x)
        y.pow(2).mean().backward()
        opt.step()

    return step


def time_step(step: Callable[[], None], n: int) -> float:
    step()  # warm-up
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t0)
    return best


def count_flops(step: Callable[[], None]) -> int:
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def run(label: str, network: str, in_shape: tuple[int, ...], n_tasks: int, batch: int, p_init: float,
        steps: int, peak: float, options: dict) -> None:
    torch.manual_seed(0)
    net = build_modular_network(network, in_shape, **options)
    x = torch.randn(n_tasks, batch, *in_shape)
    variants = {
        "stacked": dict(execution="stacked", inactive_no_grad=True),
        "stacked_tracked": dict(execution="stacked", inactive_no_grad=False),
        "per_task": dict(execution="per_task", inactive_no_grad=True),
        "per_task_tracked": dict(execution="per_task", inactive_no_grad=False),
    }
    times = {}
    for name, kw in variants.items():
        scheme = GumbelMatrix(net, n_tasks, seed=0, p_init=p_init, **kw).train()
        times[name] = time_step(make_step(scheme, x, reference=False), steps)
    ref_scheme = GumbelMatrix(net, n_tasks, seed=0, p_init=p_init).train()
    times["reference_loop"] = time_step(make_step(ref_scheme, x, reference=True), steps)
    auto = net.resolve_execution("auto", n_tasks, batch)
    chosen = GumbelMatrix(net, n_tasks, seed=0, p_init=p_init, execution="auto").train()
    flops = count_flops(make_step(chosen, x, reference=False))
    t_auto = times[auto]
    listing = ", ".join(f"{k} {1e3 * v:.1f} ms" for k, v in times.items())
    print(f"{label} (auto -> {auto}): {listing}; speed-up: {times['reference_loop'] / t_auto:.2f}x; "
          f"{flops / t_auto / 1e9:.1f} GFLOP/s = {100 * flops / t_auto / peak:.1f}% of matmul peak", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="only the 4-MNISTs configuration")
    args = parser.parse_args()
    peak = matmul_peak()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32 matmul peak "
          f"{peak / 1e9:.1f} GFLOP/s", flush=True)
    run("4-MNISTs T=4 B=16 28x28 C=4 L=3 (p_init 0.5)", "mnist4", (1, 28, 28), 4, 16, 0.5, args.steps, peak, {})
    run("4-MNISTs unfold-conv bank (p_init 0.5)", "mnist4", (1, 28, 28), 4, 16, 0.5, args.steps, peak,
        {"impl": "unfold"})
    if not args.quick:
        run("Omniglot-20 reduced T=20 B=16 14x14 48ch C=7 L=8 (p_init 0.97)", "omniglot20", (1, 14, 14),
            20, 16, 0.97, max(2, args.steps // 2), peak, {})
        run("Omniglot-20 reduced, p_init 0.5", "omniglot20", (1, 14, 14),
            20, 16, 0.5, max(2, args.steps // 2), peak, {})


if __name__ == "__main__":
    main()
