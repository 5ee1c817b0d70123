"""Reproduce Fig. 4a of the soft-ordering paper: MNIST digit-pair tasks, error relative to parallel.

For each number of tasks T, runs `sharewise compare configs/mnist_pairs/soft_ordering.yaml` with
the given schemes and seeds (the task set is drawn from the seed, as in the paper's trials) and
prints each scheme's mean test error and its ratio to parallel ordering's.

    python benchmarks/repro_mnist_pairs.py --tasks 2,10,30 --seeds 0,1 --steps 2000 --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from sharewise.pipelines.compare import compare
from sharewise.config import apply_overrides, read_yaml

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", default="2,10,30")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--schemes", default="parallel,permuted,soft_ordering,soft_ordering_uniform")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--out", default="runs/mnist_pairs")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes for each grid")
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = read_yaml(ROOT / "configs" / "mnist_pairs" / "soft_ordering.yaml")
    schemes = args.schemes.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for t in (int(x) for x in args.tasks.split(",")):
        started = time.perf_counter()
        data = apply_overrides(base, [f"tasks.options.n_tasks={t}", f"train.steps={args.steps}",
                                      f"train.eval_every={max(1, args.steps // 4)}"])
        comp = compare(data, schemes, seeds, Path(args.out) / f"T{t}", args.data_dir, quiet=True, jobs=args.jobs,
                       report=False)
        errs = {s: comp["schemes"][s]["mean_test_error"]["mean"] for s in schemes if s in comp["schemes"]}
        rows.append((t, errs, time.perf_counter() - started))
        print(f"T={t:>3}: " + "  ".join(f"{s} {100 * e:.2f}% (x{e / errs['parallel']:.3f})" for s, e in errs.items())
              + f"  [{time.perf_counter() - started:.0f} s]", flush=True)


if __name__ == "__main__":
    main()
