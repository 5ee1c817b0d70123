"""New tasks adapted over a parent run's frozen blocks vs the same tasks trained from scratch.

    python benchmarks/adapt_vs_scratch.py mnist_pairs --out /tmp/adapt_mnist --data-dir ../shared/data
    python benchmarks/adapt_vs_scratch.py omniglot --out /tmp/adapt_omniglot --data-dir ../shared/data

One parent run per setting (seed 0) on the "old" tasks; then, for each seed, ``sharewise adapt``
(new tasks' encoders, heads and structure parameters over the frozen shared blocks) and a
from-scratch run of the same scheme and model on the new tasks, both with the same number of
steps. Prints and writes ``results.json`` and ``results.md``: mean test error of the new tasks
and training wall time per seed, mean and a 95 % t-interval over seeds.

- ``mnist_pairs``: soft ordering (Sec. 4.1 model: frozen random FC-64 encoders, 4 FC-64 layers,
  dropout 0.5); parent on 10 digit pairs, new tasks 5 pairs not among them.
- ``omniglot``: Gumbel-Matrix, the reduced Omniglot-20 network (configs/gumbel/omniglot20_reduced.yaml,
  14x14 images); parent on alphabets 1-20, new tasks a held-out subset of alphabets 21-50.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sharewise.adapt import adapt  # noqa: E402
from sharewise.data import OMNIGLOT_PAPER_ORDER  # noqa: E402
from sharewise.runner import run  # noqa: E402


def settings(name: str, args: argparse.Namespace) -> tuple[dict, dict]:
    """(parent config, new-task config) for a setting."""
    if name == "mnist_pairs":
        base = yaml.safe_load((ROOT / "configs/mnist_pairs/soft_ordering.yaml").read_text())
        pairs = list(itertools.combinations(range(10), 2))
        order = np.random.default_rng(0).permutation(len(pairs))
        old = [list(pairs[i]) for i in order[:10]]
        new = [list(pairs[i]) for i in order[10:10 + args.n_new]]
        parent = {**base, "tasks": {"builder": "mnist_pairs", "options": {"pairs": old, "val_fraction": 0.1}}}
        parent["train"] = {**base["train"], "steps": args.parent_steps, "eval_every": args.eval_every}
        fresh = {**parent, "tasks": {"builder": "mnist_pairs", "options": {"pairs": new, "val_fraction": 0.1}}}
        fresh["train"] = {**parent["train"], "steps": args.steps}
        return parent, fresh
    base = yaml.safe_load((ROOT / "configs/gumbel/omniglot20_reduced.yaml").read_text())
    parent = {**base, "train": {**base["train"], "steps": args.parent_steps, "eval_every": args.eval_every}}
    new = list(OMNIGLOT_PAPER_ORDER[20:20 + args.n_new])
    fresh = {**base, "tasks": {"builder": "omniglot_alphabets",
                               "options": {**base["tasks"]["options"], "alphabets": new, "n_alphabets": len(new)}}}
    fresh["train"] = {**base["train"], "steps": args.steps, "eval_every": args.eval_every}
    return parent, fresh


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of a 95 % t-interval."""
    t = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776}.get(len(values), 2.0)
    m = statistics.fmean(values)
    return m, (t * statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("setting", choices=["mnist_pairs", "omniglot"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--parent-steps", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--n-new", type=int, default=5)
    args = ap.parse_args()
    out = Path(args.out)
    parent_cfg, new_cfg = settings(args.setting, args)
    parent_dir = out / "parent"
    if not (parent_dir / "summary.json").exists():
        run({**parent_cfg, "seed": 0}, parent_dir, data_dir=args.data_dir, overwrite=True)
    parent_summary = json.loads((parent_dir / "summary.json").read_text())
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for mode in ("adapt", "scratch"):
            d = out / f"{mode}_seed{seed}"
            if not (d / "summary.json").exists():
                cfg = {**new_cfg, "seed": seed}
                if mode == "adapt":
                    adapt(parent_dir, cfg, d, data_dir=args.data_dir, overwrite=True)
                else:
                    run(cfg, d, data_dir=args.data_dir, overwrite=True)
            s = json.loads((d / "summary.json").read_text())
            rows.append({"mode": mode, "seed": seed, "mean_test_error": s["mean_test_error"],
                         "wall_time_s": s["wall_time_s"],
                         "trained_params": sum(g["n_params"] for g in s.get("optimizer_groups", []))})
            print(json.dumps(rows[-1]), flush=True)
    table = ["| | mean test error (new tasks) | training time (s) | trained parameters |", "|---|---|---|---|"]
    summary = {}
    for mode in ("adapt", "scratch"):
        errs = [r["mean_test_error"] for r in rows if r["mode"] == mode]
        times = [r["wall_time_s"] for r in rows if r["mode"] == mode]
        (e, eh), (t, th) = interval(errs), interval(times)
        n = [r["trained_params"] for r in rows if r["mode"] == mode][0]
        summary[mode] = {"error": e, "error_ci95": eh, "time_s": t, "time_ci95": th, "trained_params": n}
        table.append(f"| {mode} | {e:.4f} ± {eh:.4f} | {t:.1f} ± {th:.1f} | {n} |")
    result = {"setting": args.setting, "args": vars(args), "parent": {"dir": str(parent_dir),
              "mean_test_error": parent_summary["mean_test_error"], "wall_time_s": parent_summary["wall_time_s"],
              "tasks": list(parent_summary["tasks"])}, "new_tasks": list(json.loads(
                  (out / "scratch_seed0" / "summary.json").read_text())["tasks"]) if (out / "scratch_seed0").exists() else None,
              "rows": rows, "summary": summary}
    (out / "results.json").write_text(json.dumps(result, indent=1))
    (out / "results.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
