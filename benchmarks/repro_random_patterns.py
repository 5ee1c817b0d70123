"""Reproduce Fig. 2 of the soft-ordering paper: permuted vs parallel ordering on random patterns.

Two tasks of n random samples (x ~ U[0,1]^m, y ~ U{0,1}); two shared layers m -> m and a shared
output layer. The paper's claim: permuted ordering fits n samples about as well as parallel
ordering fits n/2 (parallel with n samples per task is a single task with 2n samples).

    python benchmarks/repro_random_patterns.py --kind relu   --ns 25,50,100,200,400,800 --seeds 0,1,2
    python benchmarks/repro_random_patterns.py --kind linear --ns 100,200,400,800,1600 --seeds 0,1,2

Prints the training error (fraction of the 2n samples misfit) per scheme and n, mean over seeds,
and per seed (with the permuted runs' orders, which must differ between the two tasks, Eq. 4).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import sharewise
from sharewise.config import apply_overrides, read_yaml

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=["relu", "linear"], default="relu")
    parser.add_argument("--ns", default="25,50,100,200,400,800")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--schemes", default="parallel,permuted")
    parser.add_argument("--out", default="runs/random_patterns")
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = read_yaml(ROOT / "configs" / "random_patterns" / f"{args.kind}.yaml")
    ns = [int(n) for n in args.ns.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"{args.kind}: train error (mean over seeds {seeds}); steps {args.steps or base['train']['steps']}")
    schemes = args.schemes.split(",")
    print(f"{'n':>6} " + " ".join(f"{s:>10}" for s in schemes) + "   per seed")
    started = time.perf_counter()
    for n in ns:
        row, per_seed = [], []
        for scheme in schemes:
            errs = []
            for seed in seeds:
                over = [f"scheme={scheme}", f"seed={seed}", f"tasks.options.n_samples={n}"]
                if args.steps:
                    over.append(f"train.steps={args.steps}")
                s = sharewise.run(apply_overrides(base, over), Path(args.out) / args.kind / f"n{n}" / scheme / f"seed{seed}",
                                  overwrite=True)
                errs.append(sum(t["train_error"] for t in s["tasks"].values()) / len(s["tasks"]))
                orders = s.get("structure", {}).get("permutations")
                per_seed.append(f"{scheme}/{seed}={errs[-1]:.4f}" + (f" {orders}" if orders else ""))
            row.append(sum(errs) / len(errs))
        print(f"{n:>6} " + " ".join(f"{v:>10.4f}" for v in row) + "   " + "; ".join(per_seed), flush=True)
    print(f"wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
