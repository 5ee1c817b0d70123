"""The LibMTL workload's training step of this tree against an earlier commit, in one process.

    .venv/bin/python benchmarks/ab_libmtl_step.py --base <commit> [--rounds 300] [--block 20]

The workload is ``bench_vs_libmtl.py``'s (the peer's ``workload()``: T=10 two-class tasks on 32
features, batch 64 per task, ``parallel`` with four 64-wide layers and dropout 0.5, Adam, joint
mode), built once by each version: the base commit's ``src/sharewise`` is exported as the package
``sharewise_base`` (``ab_update.export_base``). A round runs ``--block`` calls of
``Trainer.train_step`` (sample, forward, loss, backward, guard, optimiser step; no evaluation)
per version, the order flipping every round, so load from other processes hits both alike.
Prints whether both versions compute the same first five training losses from the same seed (the
same dropout masks and updates), then the median wall and CPU (``process_time``) milliseconds per
step and their ratio to the base. ``bench_vs_libmtl.py`` times whole runs against LibMTL; this
one separates a change to the step from the noise of separate processes.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ab_update import export_base, print_versus_base  # noqa: E402
from bench_vs_libmtl import PEER, load_peer, register_workload, sharewise_config  # noqa: E402


def make_trainer(package: str, peer: Any) -> Any:
    """A trainer of ``package`` (``sharewise`` or ``sharewise_base``) on the peer's workload."""
    register_workload(peer, package)
    prepare = importlib.import_module(package + ".runner").prepare
    trainer_cls = importlib.import_module(package + ".training.trainer").Trainer
    cfg, tasks, model = prepare(sharewise_config(10**9), None)
    trainer = trainer_cls(cfg, model, tasks)
    trainer.model.train()
    return trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the commit to compare against")
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--block", type=int, default=20, help="steps per version and round")
    parser.add_argument("--peer", default=str(PEER), help="path of libmtl_hps.py")
    args = parser.parse_args()
    peer = load_peer(args.peer)
    tmp = tempfile.TemporaryDirectory()
    export_base(args.base, Path(tmp.name))
    sys.path.insert(0, tmp.name)
    trainers = {"base": make_trainer("sharewise_base", peer), "this": make_trainer("sharewise", peer)}
    torch.set_num_threads(1)
    losses = {}
    for name, trainer in trainers.items():
        torch.manual_seed(0)
        losses[name] = [trainer.train_step(i) for i in range(1, 6)]
    print(f"same training losses from the same seed: {losses['base'] == losses['this']} ({losses})", flush=True)
    wall: dict[str, list[float]] = {k: [] for k in trainers}
    cpu: dict[str, list[float]] = {k: [] for k in trainers}
    names, step = list(trainers), 10
    for r in range(args.rounds + 5):  # 5 warm-up rounds
        for name in names if r % 2 else names[::-1]:
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.block):
                step += 1
                trainers[name].train_step(step)
            if r >= 5:
                wall[name].append((time.perf_counter() - t0) / args.block * 1e3)
                cpu[name].append((time.process_time() - c0) / args.block * 1e3)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"LibMTL workload, parallel, joint: train_step, 1 thread, median of {args.rounds} rounds x {args.block} "
          f"steps, versions alternating; load {load}")
    print_versus_base(wall, cpu, "step")


if __name__ == "__main__":
    main()
