"""A generated table with many regression targets, to check that results stay readable at 139 tasks.

Usage: python benchmarks/make_wide_table.py OUT.csv [--tasks 139] [--rows 400]

Ten standard-normal features; target j = 5 tanh(x . w_j / 5) + noise with a per-target weight scale
drawn from [0.1, 20] (targets of very different scales), 10 % of the target cells left empty
(missing labels). Synthetic on purpose: it checks the reporting (aggregates, long CSV, plots), not
any scheme's accuracy. The config: configs/table/wide.yaml.
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--tasks", type=int, default=139)
    ap.add_argument("--rows", type=int, default=400)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n, f, t = args.rows, 10, args.tasks
    x = rng.normal(size=(n, f))
    w = rng.normal(size=(f, t)) * rng.uniform(0.1, 20, size=t)
    y = np.tanh(x @ w / 5) * 5 + rng.normal(size=(n, t)) * 0.5
    y[rng.random(size=y.shape) < 0.1] = np.nan
    with open(args.out, "w") as fh:
        fh.write(",".join([f"x{i}" for i in range(f)] + [f"task{j:03d}" for j in range(t)]) + "\n")
        for i in range(n):
            cells = [f"{v:.4f}" for v in x[i]] + ["" if np.isnan(v) else f"{v:.4f}" for v in y[i]]
            fh.write(",".join(cells) + "\n")
    print(f"wrote {args.out}: {n} rows, {f} features, {t} targets (task000..task{t - 1:03d})")


if __name__ == "__main__":
    main()
