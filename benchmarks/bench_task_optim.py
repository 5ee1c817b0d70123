"""Cost of per-task optimiser state (issue 10) on a 4-MNISTs alternating update.

    python benchmarks/bench_task_optim.py --data-dir ../shared/data [--rounds 30]

One update = the trainer's single-task update of alternating mode (Gumbel-Matrix forward on one
task's batch of 16, loss, backward, gradient check, optimiser step). Two optimisers on the same
model, alternating round by round so that a load change on the shared machine hits both alike:

- ``before``: one fused ``torch.optim.Adam`` over every parameter (the previous optimiser: it
  also moved the other tasks' slices of the stacked heads and allocation logits);
- ``after``: ``build_optimizer`` (fused Adam for shared parameters, ``PerTaskOptimizer`` for the
  stacked per-task ones).

Prints the median milliseconds per update and per optimiser step of each, their ratios, and
the load average.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from sharewise.config import read_yaml
from sharewise.runner import prepare
from sharewise.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]


class _Legacy:
    """The previous optimiser behind the trainer's ``step(tasks)`` call."""

    def __init__(self, trainer: Trainer) -> None:
        groups = [{"params": g["params"], "lr": g["lr"], "weight_decay": g["weight_decay"]}
                  for g in trainer.optimizer.param_groups]
        self.opt = torch.optim.Adam(groups, fused=True)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.opt.zero_grad(set_to_none=set_to_none)

    def step(self, tasks: Any = None) -> None:
        self.opt.step()


class _Timed:
    def __init__(self, inner: Any) -> None:
        self.inner, self.seconds = inner, 0.0

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.inner.zero_grad(set_to_none=set_to_none)

    def step(self, tasks: Any = None) -> None:
        t0 = time.perf_counter()
        self.inner.step(tasks)
        self.seconds += time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--updates", type=int, default=8, help="single-task updates per round and optimiser")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg_dict = read_yaml(ROOT / "configs" / "gumbel" / "mnist4.yaml")
    cfg, tasks, model = prepare(cfg_dict, args.data_dir)
    trainer = Trainer(cfg, model, tasks)
    variants = {"before": _Timed(_Legacy(trainer)), "after": _Timed(trainer.optimizer)}
    per_update: dict[str, list[float]] = {k: [] for k in variants}
    per_step: dict[str, list[float]] = {k: [] for k in variants}
    n_tasks = len(tasks)
    x, y = trainer.sampler.next()
    for r in range(args.rounds + 1):
        for name, opt in variants.items():
            trainer.optimizer = opt  # type: ignore[assignment]
            opt.seconds = 0.0
            t0 = time.perf_counter()
            for i in range(args.updates):
                t = i % n_tasks
                trainer._update(x[t:t + 1], y[t:t + 1], [t], step=r)
            if r > 0:  # round 0 warms both up
                per_update[name].append((time.perf_counter() - t0) / args.updates * 1e3)
                per_step[name].append(opt.seconds / args.updates * 1e3)
    load = open("/proc/loadavg").read().split()[:3]
    b, a = statistics.median(per_update["before"]), statistics.median(per_update["after"])
    sb, sa = statistics.median(per_step["before"]), statistics.median(per_step["after"])
    print(f"4-MNISTs alternating update (T={n_tasks}, batch {cfg.train.batch_size}, 1 thread), "
          f"median of {args.rounds} rounds x {args.updates} updates, load average {' '.join(load)}")
    print(f"update:         before {b:.3f} ms   after {a:.3f} ms   after/before {a / b:.3f}")
    print(f"optimiser step: before {sb:.3f} ms   after {sa:.3f} ms   after/before {sa / sb:.3f}")


if __name__ == "__main__":
    main()
