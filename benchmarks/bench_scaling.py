"""Cost of many tasks: training-step time per task at T = 10, 45, 139 for three schemes (dense).

    .venv/bin/python benchmarks/bench_scaling.py [--rounds 5] [--block 5] [--tasks 10,45,139]

One step is ``Trainer.train_step`` in joint mode (sampler, forward, loss, backward, gradient
check, fused Adam), as a run makes it. Workload (school-like: the 139-task school data has 28
features and a regression target per school): T regression tasks of 28 features, 512 training
rows each, batch 32 per task, dense per-task encoders 28 -> 32 (ReLU), a core of D = 4 dense
32 -> 32 ReLU layers with dropout 0.2, one linear head per task; one thread. Schemes:

- ``parallel``: every task runs W_1..W_D (one [T*B, 32] x [32, 32] product per depth);
- ``soft_ordering``: every depth runs all D layers on every task ([T*B, 32] x [32, 4*32]) and
  mixes them with per-task scales (Eq. 7): D times parallel's core FLOPs;
- ``gumbel_matrix`` (``network: core``, 4 components per layer): every component runs on every
  task (no sparse execution, as in the paper's code) and is mixed by the sampled allocation:
  the same core FLOPs as soft ordering, plus the allocation sampling.

Variants alternate inside every round (so load from other processes hits them alike); each
round times a block of steps; printed: median ms per step and per task, and the per-task cost
relative to T = 10 (1.00 = flat). FLOPs per step are counted with ``torch.utils.flop_counter``
to show which part of the growth is arithmetic and which is not.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from sharewise.builders import build_model
from sharewise.config import parse_config
from sharewise.tasks.spec import TaskData
from sharewise.training.trainer import Trainer
from sharewise.training.allocator import keep_freed_memory

from _timing import interleaved_seconds  # benchmarks/ (the script's own folder)

SCHEMES = ("parallel", "soft_ordering", "gumbel_matrix")
FEATURES, ROWS, BATCH, WIDTH, DEPTH = 28, 512, 32, 32, 4


def school_like_tasks(n_tasks: int) -> list[TaskData]:
    g = torch.Generator().manual_seed(0)
    tasks = []
    for t in range(n_tasks):
        x = torch.rand(ROWS, FEATURES, generator=g)
        y = (x @ torch.randn(FEATURES, 1, generator=g)).float()  # [N, 1]
        tasks.append(TaskData(f"school{t}", "regression", 1, x, y, x[:0], y[:0], x[:64], y[:64]))
    return tasks


def make_step(scheme: str, tasks: list[TaskData]) -> Callable[[], None]:
    cfg = parse_config({
        "name": "scaling", "scheme": scheme, "tasks": {"builder": "demo"},
        "model": {"encoder": {"kind": "dense", "activation": "relu"},
                  "core": {"kind": "dense", "width": WIDTH, "depth": DEPTH, "dropout": 0.2}},
        "train": {"batch_size": BATCH, "lr": 1e-3, "threads": 1},
    })
    torch.manual_seed(0)
    trainer = Trainer(cfg, build_model(cfg, tasks), tasks)
    trainer.model.train()
    counter = iter(range(1, 10**9))
    return lambda: trainer.train_step(next(counter))


def count_flops(step: Callable[[], None]) -> int:
    from sharewise.components.gemm import count_flops_of_onednn

    count_flops_of_onednn()  # oneDNN products count too (a FlopCounterMode copies the formulas when made)
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--block", type=int, default=5, help="steps per timed block")
    ap.add_argument("--tasks", default="10,45,139")
    args = ap.parse_args()
    torch.set_num_threads(1)
    allocator = keep_freed_memory()  # as a run's process
    counts = [int(s) for s in args.tasks.split(",")]
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "n/a"
    print(f"torch {torch.__version__}, 1 thread; median of {args.rounds} rounds x {args.block} steps; "
          f"allocator {allocator}; load average {load}", flush=True)
    per_task: dict[str, dict[int, float]] = {s: {} for s in SCHEMES}
    for n_tasks in counts:
        tasks = school_like_tasks(n_tasks)
        steps = {s: make_step(s, tasks) for s in SCHEMES}
        flops = {s: count_flops(step) for s, step in steps.items()}
        samples = interleaved_seconds(steps, args.rounds, args.block, warmup=3)
        for s in SCHEMES:
            sec = statistics.median(samples[s])
            per_task[s][n_tasks] = sec / n_tasks
            base = per_task[s].get(counts[0])
            rel = f"{per_task[s][n_tasks] / base:.2f}x of T={counts[0]}" if base else ""
            print(f"T={n_tasks:<4} {s:<14} {1e3 * sec:8.2f} ms/step {1e3 * sec / n_tasks:7.3f} ms/task "
                  f"({rel}); {flops[s] / n_tasks / 1e6:.2f} MFLOP/task, "
                  f"{flops[s] / flops['parallel']:.2f}x parallel's FLOPs, "
                  f"{sec / statistics.median(samples['parallel']):.2f}x parallel's time", flush=True)
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "n/a"
    print(f"load average at the end {load}")


if __name__ == "__main__":
    main()
