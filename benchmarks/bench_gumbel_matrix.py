"""Gumbel-Matrix training step: stacked execution vs a loop over tasks and components.

    .venv/bin/python benchmarks/bench_gumbel_matrix.py [--steps 5] [--quick]

One training step = sample allocations, forward, mean-square loss, backward, Adam step on the
model and the allocation logits. Configurations: 4-MNISTs (T=4, batch 16 per task, 28x28, 3
modular layers x 4 components of 4-filter convs) and a reduced Omniglot-20 (T=20, batch 16,
48 channels, 7 components x 8 layers, 12x12 images by default instead of 105x105). Each line
prints the milliseconds per step (best of ``--steps``, variants alternating) of every execution
path (``*_tracked``: without the inactive_no_grad trick), which one the default options
(execution='auto', inactive_no_grad=False) resolve to, ``speed-up: <ratio>x`` of that default
over the reference loop, and the fraction of the machine's float32 matmul peak it reaches
(FLOPs counted by ``torch.utils.flop_counter``; peak measured with a 2048^3 matmul first).
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


def time_steps(steps: dict[str, Callable[[], None]], rounds: int) -> dict[str, float]:
    """Best seconds per step of each variant; variants alternate within each round, so a load
    change on a shared machine hits them all alike."""
    for step in steps.values():
        step()  # warm-up (allocator, oneDNN primitives)
    best = {name: float("inf") for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            best[name] = min(best[name], time.perf_counter() - t0)
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
    steps_by_name = {name: make_step(GumbelMatrix(net, n_tasks, seed=0, p_init=p_init, **kw).train(), x, False)
                     for name, kw in variants.items()}
    ref_scheme = GumbelMatrix(net, n_tasks, seed=0, p_init=p_init).train()
    steps_by_name["reference_loop"] = make_step(ref_scheme, x, reference=True)
    times = time_steps(steps_by_name, steps)
    # The default options (execution='auto', inactive_no_grad=False) resolve to one variant above.
    auto = net.resolve_execution("auto", n_tasks, batch)
    default = auto + "_tracked"  # inactive_no_grad is off by default
    chosen = GumbelMatrix(net, n_tasks, seed=0, p_init=p_init).train()
    flops = count_flops(make_step(chosen, x, reference=False))
    t_auto = times[default]
    listing = ", ".join(f"{k} {1e3 * v:.1f} ms" for k, v in times.items())
    print(f"{label} (default = {default}): {listing}; speed-up: {times['reference_loop'] / t_auto:.2f}x; "
          f"{flops / t_auto / 1e9:.1f} GFLOP/s = {100 * flops / t_auto / peak:.1f}% of matmul peak", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="only the 4-MNISTs configuration")
    parser.add_argument("--no-mkldnn", action="store_true", help="torch.backends.mkldnn.enabled = False")
    parser.add_argument("--omniglot-size", type=int, default=12, help="image side of the reduced Omniglot")
    args = parser.parse_args()
    torch.backends.mkldnn.enabled = not args.no_mkldnn
    peak = matmul_peak()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, mkldnn {not args.no_mkldnn}, "
          f"float32 matmul peak "
          f"{peak / 1e9:.1f} GFLOP/s", flush=True)
    run("4-MNISTs T=4 B=16 28x28 C=4 L=3 (p_init 0.5)", "mnist4", (1, 28, 28), 4, 16, 0.5, args.steps, peak, {})
    run("4-MNISTs unfold-conv bank (p_init 0.5)", "mnist4", (1, 28, 28), 4, 16, 0.5, args.steps, peak,
        {"impl": "unfold"})
    if not args.quick:
        h = args.omniglot_size
        for p_init in (0.97, 0.5):
            run(f"Omniglot-20 reduced T=20 B=16 {h}x{h} 48ch C=7 L=8 (p_init {p_init})", "omniglot20",
                (1, h, h), 20, 16, p_init, max(2, args.steps // 2), peak, {})


if __name__ == "__main__":
    main()
