"""Per-step cost of balancing: time ratio to the default summed-loss step, extra backward passes, memory.

    OMP_NUM_THREADS=1 python benchmarks/bench_balancing.py [--data-dir ../shared/data] [--steps 30]

For each scheme (UCI-10 sizes: 10 tasks, FC-32 core) it times the training step of every mode,
interleaved round by round in one process (so machine load hits all modes alike), and prints the
median step time relative to the default, the number of backward passes per step (the default
and the loss path: 1; the per-task path: one vmapped pass over T' cotangents, i.e. T' backward
passes' worth of work, plus one for a scheme regulariser) and the extra memory the per-task path
holds: the gradient matrix G [T', N] (plus the same again for the update while it is combined).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from sharewise.runner import prepare
from sharewise.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
MODES: dict[str, dict[str, Any]] = {
    "equal (default)": {},
    "uncertainty": {"weighting": "uncertainty"},
    "dwa": {"weighting": "dwa"},
    "gradnorm": {"weighting": "gradnorm"},
    "mean": {"aggregator": "mean"},
    "upgrad": {"aggregator": "upgrad"},
    "upgrad structure-aware": {"aggregator": "upgrad", "structure_aware": True},
    "mgda": {"aggregator": "mgda"},
}


def trainers(scheme: str, data_dir: str | None) -> dict[str, Trainer]:
    base = yaml.safe_load((ROOT / "configs" / "balancing" / "uci10.yaml").read_text())
    out = {}
    for mode, train in MODES.items():
        if "structure" in mode and scheme == "parallel":
            continue
        cfg = {**base, "scheme": scheme, "train": {**base["train"], **train}}
        c, tasks, model = prepare(cfg, data_dir)
        out[mode] = Trainer(c, model, tasks)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--steps", type=int, default=30, help="timed steps per mode")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"load average before: {open('/proc/loadavg').read().split()[:3]}")
    for scheme in ("parallel", "gumbel_matrix"):
        runs = trainers(scheme, args.data_dir)
        times: dict[str, list[float]] = {m: [] for m in runs}
        for step in range(args.steps + 3):
            for mode, trainer in runs.items():  # interleaved: load affects every mode alike
                t = time.perf_counter()
                trainer.train_step(step + 1)
                if step >= 3:  # warm-up
                    times[mode].append(time.perf_counter() - t)
        base = statistics.median(times["equal (default)"])
        print(f"\n{scheme} (UCI-10 sizes, T=10, batch 64 per task): default step {base * 1e3:.1f} ms")
        print("| mode | step time / default | backward passes per step | extra memory |")
        print("|---|---|---|---|")
        for mode, trainer in runs.items():
            bal = trainer.balancer
            n_params = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
            if bal is None or not bal.per_task:
                passes, memory = "1", "-"
            else:
                reg = trainer.model.scheme.regularizer() is not None
                passes = f"{len(trainer.tasks)} (one vmapped pass){' + 1' if reg else ''}"
                memory = f"G: {len(trainer.tasks)} x {n_params} floats = {len(trainer.tasks) * n_params * 4 / 2**20:.2f} MiB"
            print(f"| {mode} | {statistics.median(times[mode]) / base:.2f}x | {passes} | {memory} |")
    print(f"\nload average after: {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
