"""Data-parallel throughput: 1 process vs 2 DDP processes (torchrun, gloo) on this machine.

    .venv/bin/python benchmarks/bench_ddp.py [--steps 60] [--warmup 10] [--rounds 3] [--data-dir ../shared/data]

Each measurement launches the training step of ``sharewise.training.trainer.Trainer`` (sampler
shard, forward, summed task losses, backward with DDP's gradient all-reduce, the per-update loss
and stop agreement, gradient check, Adam) in fresh processes and times ``--steps`` steps after
``--warmup`` (evaluation, checkpoints and start-up are excluded). Throughput counts the samples of
all ranks: ``T * batch_size * world / seconds``. Variants, per configuration and round:

- ``1 proc x 1 thread``: the single-process loop (no process group);
- ``2 DDP x 1 thread``: ``torchrun --nproc-per-node=2``, each rank ``train.batch_size`` per task
  (the global batch doubles; this is the data-parallel scaling the issue asks about);
- ``1 proc x 2 threads``: the alternative use of the same two cores, same global batch as DDP.

Configurations: MNIST pairs T=10 soft ordering (dense: frozen FC-64 encoders from 784 inputs,
4 FC-64 layers, dropout 0.5, batch 64 per task) and 4-MNISTs Gumbel-Matrix (conv: 3 modular layers
x 4 components of 4-filter 5x5 convs on 28x28 images, batch 16 per task). The printed numbers are
medians over rounds; the variants alternate within a round so load from other processes hits
them alike. Results and what limits them: docs/results.md, section 4.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

CONFIGS: dict[str, dict[str, Any]] = {
    "dense: MNIST pairs T=10, soft_ordering, B=64": {
        "name": "bench", "scheme": "soft_ordering",
        "tasks": {"builder": "mnist_pairs", "options": {"n_tasks": 10, "val_fraction": 0.1}},
        "model": {"encoder": {"kind": "dense", "activation": "relu", "frozen": True},
                  "core": {"kind": "dense", "width": 64, "depth": 4, "dropout": 0.5, "activation": "relu"}},
        "train": {"batch_size": 64, "lr": 0.001},
    },
    "conv: 4-MNISTs, gumbel_matrix, B=16": {
        "name": "bench", "scheme": "gumbel_matrix",
        "scheme_options": {"network": "mnist4", "arch_lr_multiplier": 1},
        "tasks": {"builder": "mnist_variants", "options": {"max_train_per_task": 10000}},
        "model": {"encoder": {"kind": "identity"}, "core": {"kind": "conv", "width": 1, "depth": 1, "dropout": 0.5}},
        "train": {"batch_size": 16, "lr": 0.001},
    },
}


def worker(cfg: dict[str, Any], data_dir: str, steps: int, warmup: int, result: str) -> None:
    """One rank (or the single process): time ``steps`` training steps after ``warmup``."""
    import torch
    import torch.distributed as dist

    from sharewise.runner import prepare
    from sharewise.training import distributed
    from sharewise.training.trainer import Trainer

    ctx = distributed.init_from_env()
    cfg = {**cfg, "train": {**cfg["train"], "steps": warmup + steps}}
    rcfg, tasks, model = prepare(cfg, data_dir)
    model.to(ctx.device)
    distributed.seed_rank(rcfg.seed, ctx)
    trainer = Trainer(rcfg, model, tasks, dist=ctx)
    trainer.step_model = distributed.wrap(model, ctx)
    model.train()
    for step in range(1, warmup + 1):
        trainer.train_step(step)
    if ctx.enabled:
        dist.barrier()
    started = time.perf_counter()
    for step in range(warmup + 1, warmup + steps + 1):
        trainer.train_step(step)
    if ctx.enabled:
        dist.barrier()
    seconds = time.perf_counter() - started
    comm_ms = 0.0
    if ctx.enabled:  # the gradient all-reduce alone: one flat tensor of every trainable parameter
        grads = torch.zeros(sum(p.numel() for p in model.parameters() if p.requires_grad), device=ctx.device)
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(steps):
            dist.all_reduce(grads)
        comm_ms = 1e3 * (time.perf_counter() - t0) / steps
    if ctx.is_main:
        samples = len(tasks) * rcfg.train.batch_size * ctx.world * steps
        Path(result).write_text(json.dumps({"samples_per_s": samples / seconds, "step_ms": 1e3 * seconds / steps,
                                            "allreduce_ms": comm_ms, "n_params": grads.numel() if ctx.enabled else 0}))
    distributed.shutdown()


def measure(cfg: dict[str, Any], data_dir: str, steps: int, warmup: int, world: int, threads: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        args = [__file__, "--worker", json.dumps(cfg), "--data-dir", data_dir, "--steps", str(steps),
                "--warmup", str(warmup), "--result", str(result)]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads),
               "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        if world > 1:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={world}", *args]
        else:
            cmd = [sys.executable, *args]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:6])} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
        return json.loads(result.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--only", default=None, help="run only configurations whose name contains this")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(json.loads(args.worker), args.data_dir, args.steps, args.warmup, args.result)
        return
    variants = {"1 proc x 1 thread": (1, 1), "2 DDP x 1 thread": (2, 1), "1 proc x 2 threads": (1, 2)}
    print(f"cores: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.1f}")
    for name, cfg in CONFIGS.items():
        if args.only and args.only not in name:
            continue
        rates: dict[str, list[float]] = {v: [] for v in variants}
        step_ms: dict[str, list[float]] = {v: [] for v in variants}
        comm: list[dict[str, float]] = []
        for _ in range(args.rounds):
            for variant, (world, threads) in variants.items():
                c = cfg
                if variant == "1 proc x 2 threads":  # same global batch as the 2 DDP ranks
                    c = {**cfg, "train": {**cfg["train"], "batch_size": 2 * cfg["train"]["batch_size"]}}
                res = measure(c, args.data_dir, args.steps, args.warmup, world, threads)
                rates[variant].append(res["samples_per_s"])
                step_ms[variant].append(res["step_ms"])
                if world > 1:
                    comm.append(res)
        med = {v: statistics.median(r) for v, r in rates.items()}
        base = med["1 proc x 1 thread"]
        print(f"\n{name}  ({args.steps} steps after {args.warmup}, median of {args.rounds} rounds)")
        for variant, rate in med.items():
            spread = f"{min(rates[variant]):.0f}-{max(rates[variant]):.0f}"
            print(f"  {variant:<20} {rate:9.0f} samples/s  ({spread})  ratio {rate / base:.2f}x  "
                  f"{statistics.median(step_ms[variant]):7.1f} ms/step")
        print(f"  gradient all-reduce alone (gloo, {int(comm[0]['n_params'])} floats): "
              f"{statistics.median(r['allreduce_ms'] for r in comm):.2f} ms")
    print(f"\nload average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
