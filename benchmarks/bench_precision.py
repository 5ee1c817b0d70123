"""train.precision: bf16 (autocast) vs fp32 training-step time on the Omniglot configurations.

    .venv/bin/python benchmarks/bench_precision.py [--rounds 3] [--block 2] [--size 53] [--gm-size 52]

One step is ``Trainer.train_step`` as a run makes it (sampler, forward, loss, backward, gradient
check, fused Adam), built from the configuration with synthetic images of the right shape (speed
does not depend on the pixel values), one thread. Configurations:

- soft ordering on Omniglot (soft-ordering paper Sec. 4.3): T=50 alphabets, one image per task
  per step, channel-padded to 53, four 53 -> 53 3x3 conv layers with 2x2 max pooling, dropout,
  joint steps; images ``--size`` square (the paper's 105 costs ~3 s per fp32 step here);
- Gumbel-Matrix on Omniglot-20 (Maziarz et al.): ``configs/gumbel/omniglot20.yaml``'s network
  (48 channels, 8 routed layers of 7 components, GroupNorm) at batch 16, alternating updates
  (one per task), images ``--gm-size`` square (105 in the paper).

fp32 and bf16 alternate inside every round; printed: median seconds per step and the speed-up.
bf16 matmuls and convolutions need hardware support to be fast (on x86: AVX512-BF16 or AMX);
without it autocast can be slower than float32.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

import torch

from sharewise.builders import build_model
from sharewise.config import parse_config
from sharewise.tasks.spec import TaskData
from sharewise.training.trainer import Trainer
from sharewise.training.allocator import keep_freed_memory

from _timing import interleaved_seconds  # benchmarks/ (the script's own folder)


def image_tasks(n_tasks: int, size: int, classes: int, rows: int) -> list[TaskData]:
    g = torch.Generator().manual_seed(0)
    tasks = []
    for t in range(n_tasks):
        x = (torch.rand(rows, 1, size, size, generator=g) > 0.9).float()
        y = torch.randint(0, classes, (rows,), generator=g)
        tasks.append(TaskData(f"alphabet{t}", "multiclass", classes, x, y, x[:0], y[:0], x[:4], y[:4]))
    return tasks


def soft_ordering_omniglot(precision: str, size: int) -> dict[str, Any]:
    return {"name": "so_omniglot", "scheme": "soft_ordering", "tasks": {"builder": "demo"},
            "model": {"encoder": {"kind": "channel_pad"},
                      "core": {"kind": "conv", "width": 53, "depth": 4, "kernel_size": 3, "pool": True,
                               "dropout": 0.5}},
            "train": {"batch_size": 1, "lr": 1e-3, "threads": 1, "precision": precision}}


def gumbel_omniglot20(precision: str, size: int) -> dict[str, Any]:
    return {"name": "gm_omniglot20", "scheme": "gumbel_matrix",
            "scheme_options": {"network": "omniglot20", "p_init": 0.97}, "tasks": {"builder": "demo"},
            "model": {"encoder": {"kind": "identity"}, "core": {"kind": "conv", "dropout": 0.5}},
            "train": {"mode": "alternating", "batch_size": 16, "lr": 1e-4, "arch_lr": 2e-3, "threads": 1,
                      "precision": precision}}


def make_step(cfg_dict: dict[str, Any], tasks: list[TaskData]) -> Any:
    cfg = parse_config(cfg_dict)
    torch.manual_seed(0)
    trainer = Trainer(cfg, build_model(cfg, tasks), tasks)
    counter = iter(range(1, 10**9))
    return lambda: trainer.train_step(next(counter))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--block", type=int, default=2, help="steps per timed block")
    ap.add_argument("--size", type=int, default=53, help="image side for soft ordering (paper: 105)")
    ap.add_argument("--gm-size", type=int, default=52, help="image side for Gumbel-Matrix (paper: 105)")
    args = ap.parse_args()
    if args.gm_size < 28:  # five stride-2 layers: 16x16 leaves nothing to pool, and training blows up
        ap.error(f"--gm-size {args.gm_size} is too small for the Omniglot-20 network's five strided layers "
                 f"(its gradients overflow); use 28 or more (the paper: 105)")
    torch.set_num_threads(1)
    allocator = keep_freed_memory()  # as a run's process
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "n/a"
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    print(f"torch {torch.__version__}, 1 thread, avx512_bf16 {'avx512_bf16' in flags}, amx_bf16 "
          f"{'amx_bf16' in flags}; median of {args.rounds} rounds x {args.block} steps; allocator {allocator}; "
          f"load average {load}",
          flush=True)
    setups = [
        (f"soft ordering, Omniglot T=50 B=1 {args.size}x{args.size} 53ch", soft_ordering_omniglot,
         image_tasks(50, args.size, 20, 8), args.size),
        (f"Gumbel-Matrix, Omniglot-20 T=20 B=16 {args.gm_size}x{args.gm_size} 48ch C=7 L=8 (alternating)",
         gumbel_omniglot20, image_tasks(20, args.gm_size, 20, 32), args.gm_size),
    ]
    for label, make_cfg, tasks, size in setups:
        steps = {p: make_step(make_cfg(p, size), tasks) for p in ("fp32", "bf16")}
        samples = interleaved_seconds(steps, args.rounds, args.block)
        f32, b16 = statistics.median(samples["fp32"]), statistics.median(samples["bf16"])
        load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "n/a"
        print(f"{label}: fp32 {f32:.3f} s/step, bf16 {b16:.3f} s/step; bf16 speed-up: {f32 / b16:.2f}x "
              f"(load {load})", flush=True)


if __name__ == "__main__":
    main()
