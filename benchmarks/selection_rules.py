"""Test error of a finished comparison under each checkpoint-selection rule, from its metrics.jsonl.

Every evaluation logs per-task test errors, so the rules of ``train.select_by`` (summed validation
loss, mean validation error, last state) can be compared on the same runs without retraining.

    python benchmarks/selection_rules.py runs/uci10-drop0.8
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from sharewise.training.io import read_jsonl
from sharewise.summary import selection_score

RULES = ("val_loss", "val_error", "last")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("compare_dir")
    args = parser.parse_args()
    root = Path(args.compare_dir)
    print(f"{'scheme':<24}{'n':>3}" + "".join(f"{r:>16}" for r in RULES) + "   (mean test error %, mean over seeds)")
    for scheme_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        runs = [read_jsonl(d / "metrics.jsonl") for d in sorted(scheme_dir.glob("seed*")) if (d / "summary.json").exists()]
        if not runs:
            continue
        cols = []
        for rule in RULES:
            picked = [min(records, key=lambda r: selection_score(r, rule))["mean_test_error"] for records in runs]
            cols.append(f"{100 * statistics.mean(picked):>9.2f} ± {100 * (statistics.stdev(picked) if len(picked) > 1 else 0):4.2f}")
        print(f"{scheme_dir.name:<24}{len(runs):>3}" + "".join(f"{c:>16}" for c in cols))


if __name__ == "__main__":
    main()
