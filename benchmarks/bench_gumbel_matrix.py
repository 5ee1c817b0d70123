"""Gumbel-Matrix training step: stacked execution vs a loop over tasks and components.

    .venv/bin/python benchmarks/bench_gumbel_matrix.py [--steps 5] [--quick] [--no-update] [--no-layers]

One training step = sample allocations, forward, mean-square loss, backward, Adam step on the
model and the allocation logits. Configurations: 4-MNISTs (T=4, batch 16 per task, 28x28, 3
modular layers x 4 components of 4-filter convs) and a reduced Omniglot-20 (T=20, batch 16,
48 channels, 7 components x 8 layers, 12x12 images by default instead of 105x105). Each line
prints the milliseconds per step (best of ``--steps``, variants alternating) of every execution
path (``*_tracked``: without the inactive_no_grad trick), which one the default options
(execution='auto', inactive_no_grad=False) resolve to, ``speed-up: <ratio>x`` of that default
over the reference loop, and the fraction of the machine's float32 matmul peak it reaches
(FLOPs counted by ``torch.utils.flop_counter``; peak: the best of five 2048^3 matmuls first,
``benchmarks/_peak.py``).

Two more measurements (skip them with ``--no-layers`` / ``--no-update``):

- *per layer* (how ``mnist4_network``'s per-layer ``impl`` default was chosen): each 4-MNISTs
  modular layer with its pooling, forward and forward + backward, ``impl='conv'`` against
  ``impl='unfold'`` (sharing weights, alternating), for one task (alternating mode) and four
  (joint mode); median microseconds.
- *per update*: the trainer's alternating update (one task's forward, loss, backward, gradient
  check, optimiser step) on ``configs/gumbel/mnist4.yaml`` with real 4-MNISTs batches (needs
  ``--data-dir``), one trainer per variant (``impl`` of every layer conv, unfold, and the
  default), variants alternating round by round; median wall and CPU milliseconds per update.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from sharewise.components.modular import ModularNetwork, loop_forward
from sharewise.components.modular_sets import MNIST4_IMPL, build_modular_network
from sharewise.sharing.gumbel_matrix import GumbelMatrix

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peak import matmul_peak  # noqa: E402  (benchmarks/_peak.py: best of 5 products, not their mean)

ROOT = Path(__file__).resolve().parents[1]


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
    from sharewise.components.gemm import count_flops_of_onednn

    count_flops_of_onednn()  # oneDNN products count too (a FlopCounterMode copies the formulas when made)
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


def _median_us(fn: Callable[[], object], reps: int, rounds: int) -> Callable[[], float]:
    samples: list[float] = []

    def one_round() -> float:
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        samples.append((time.perf_counter() - t0) / reps * 1e6)
        return statistics.median(samples)

    return one_round


def per_layer(rounds: int) -> None:
    """Each 4-MNISTs modular layer (+ its pooling), conv vs unfold, forward and forward + backward."""
    torch.manual_seed(0)
    nets = {impl: build_modular_network("mnist4", (1, 28, 28), impl=impl) for impl in ("conv", "unfold")}
    nets["unfold"].load_state_dict(nets["conv"].state_dict())
    shapes = [tuple(layer.in_shape) for layer in nets["conv"].layers]  # after the previous pooling
    print(f"per layer, median us (load {' '.join(open('/proc/loadavg').read().split()[:3])}):", flush=True)
    for n_tasks in (1, 4):
        for l, shape in enumerate(shapes):
            x = torch.randn(n_tasks, 16, *shape, requires_grad=l > 0)
            z = (torch.rand(n_tasks, 4) > 0.3).float().requires_grad_(True)
            timers = {}
            for impl, net in nets.items():
                layer, post = net.layers[l], net.post[l]

                def fwd(layer=layer, post=post) -> torch.Tensor:
                    return ModularNetwork._shared(post, layer(x, z))

                def fwd_bwd(fwd=fwd) -> None:
                    fwd().sum().backward()

                timers[impl] = (_median_us(fwd, 20, rounds), _median_us(fwd_bwd, 20, rounds))
            for _ in range(rounds):
                res = {impl: (f(), fb()) for impl, (f, fb) in timers.items()}
            c, u = res["conv"], res["unfold"]
            print(f"  T'={n_tasks} layer {l} (in {list(shape)}): conv fwd {c[0]:.0f} / fwd+bwd {c[1]:.0f}; "
                  f"unfold fwd {u[0]:.0f} / fwd+bwd {u[1]:.0f}; unfold/conv fwd+bwd {u[1] / c[1]:.2f}", flush=True)


def per_update(data_dir: str, rounds: int, updates: int) -> None:
    """The trainer's alternating update on configs/gumbel/mnist4.yaml, per impl, alternating."""
    from sharewise.config import read_yaml
    from sharewise.runner import prepare
    from sharewise.training.trainer import Trainer

    if not (Path(data_dir) / "mnist").is_dir():
        print(f"per-update timing skipped: no MNIST under {data_dir} (pass --data-dir, or --no-update)", flush=True)
        return
    variants = {"conv": "conv", "unfold": "unfold", "default": None}
    trainers = {}
    for name, impl in variants.items():
        cfg_dict = read_yaml(ROOT / "configs" / "gumbel" / "mnist4.yaml")
        if impl is not None:
            cfg_dict["scheme_options"]["network_options"] = {"impl": impl}
        cfg, tasks, model = prepare(cfg_dict, data_dir)
        trainers[name] = Trainer(cfg, model, tasks)
    n_tasks = len(tasks)
    x, y = trainers["default"].sampler.next()
    wall: dict[str, list[float]] = {k: [] for k in trainers}
    cpu: dict[str, list[float]] = {k: [] for k in trainers}
    for r in range(rounds + 1):
        for name, trainer in trainers.items():
            t0, c0 = time.perf_counter(), time.process_time()
            for i in range(updates):
                t = i % n_tasks
                trainer._update(x[t:t + 1], y[t:t + 1], [t], step=r)
            if r > 0:  # round 0 warms up
                wall[name].append((time.perf_counter() - t0) / updates * 1e3)
                cpu[name].append((time.process_time() - c0) / updates * 1e3)
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    print(f"4-MNISTs alternating update (T={n_tasks}, batch 16, {torch.get_num_threads()} thread(s)), median of "
          f"{rounds} rounds x {updates} updates, load {load}; default impl per layer: {list(MNIST4_IMPL)}")
    for name in trainers:
        print(f"  {name:8s} {statistics.median(wall[name]):.3f} ms wall, {statistics.median(cpu[name]):.3f} ms CPU "
              f"per update", flush=True)
    print(f"update: {statistics.median(wall['default']):.2f} ms (default), "
          f"unfold/conv {statistics.median(wall['unfold']) / statistics.median(wall['conv']):.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="only the 4-MNISTs configuration")
    parser.add_argument("--no-mkldnn", action="store_true", help="torch.backends.mkldnn.enabled = False")
    parser.add_argument("--omniglot-size", type=int, default=12, help="image side of the reduced Omniglot")
    parser.add_argument("--no-layers", action="store_true", help="skip the per-layer conv / unfold timing")
    parser.add_argument("--no-update", action="store_true", help="skip the per-update timing")
    parser.add_argument("--rounds", type=int, default=15, help="rounds of the per-layer and per-update timing")
    parser.add_argument("--updates", type=int, default=8, help="updates per round and variant")
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    args = parser.parse_args()
    torch.backends.mkldnn.enabled = not args.no_mkldnn
    if not args.no_update:
        per_update(args.data_dir, args.rounds, args.updates)
    if not args.no_layers:
        per_layer(args.rounds)
    peak = matmul_peak()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, mkldnn {not args.no_mkldnn}, "
          f"float32 matmul peak "
          f"{peak / 1e9:.1f} GFLOP/s", flush=True)
    run("4-MNISTs T=4 B=16 28x28 C=4 L=3 (p_init 0.5), conv bank", "mnist4", (1, 28, 28), 4, 16, 0.5,
        args.steps, peak, {"impl": "conv"})
    run("4-MNISTs unfold bank (the default; p_init 0.5)", "mnist4", (1, 28, 28), 4, 16, 0.5, args.steps, peak,
        {"impl": "unfold"})
    if not args.quick:
        h = args.omniglot_size
        for p_init in (0.97, 0.5):
            run(f"Omniglot-20 reduced T=20 B=16 {h}x{h} 48ch C=7 L=8 (p_init {p_init})", "omniglot20",
                (1, h, h), 20, 16, p_init, max(2, args.steps // 2), peak, {})


if __name__ == "__main__":
    main()
