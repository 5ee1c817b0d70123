"""Does balancing help? equal vs uncertainty vs UPGrad vs structure-aware UPGrad (docs/results.md).

    python benchmarks/repro_balancing.py --sets diabetes,uci10,mnist_multitask,mnist4 \\
        --seeds 0,1,2 --data-dir ../shared/data --out /work/runs/i18/balancing
    python benchmarks/repro_balancing.py --table --out /work/runs/i18/balancing

Cells are ``OUT/<set>/<scheme>/<method>/seed<N>``; a cell with a ``summary.json`` is reused, so
re-running the command resumes the grid. Several processes may run the same command (two =
two training processes): each claims the next unclaimed cell. Every set runs under hard sharing and under one learned-sharing scheme
(see ``schemes``: Gumbel-Matrix, or for mnist_multitask the RSA-learned branched tree);
structure-aware aggregation only under the learned scheme, where it differs from plain
aggregation (under hard sharing every task uses every core weight: the same computation).

``diabetes`` is written from scikit-learn's bundled raw diabetes data to ``OUT/diabetes.csv``
(see configs/balancing/diabetes.yaml). The score is the mean test error over tasks; for the
regression set it is the mean over tasks of test RMSE / the target's training-split standard
deviation (so the four scales count equally), with the raw RMSEs in the table too.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SETS = ("diabetes", "uci10", "mnist_multitask", "mnist4")
METHODS: dict[str, dict[str, Any]] = {
    "equal": {},
    "uncertainty": {"weighting": "uncertainty"},
    "upgrad": {"aggregator": "upgrad"},
    "upgrad_aware": {"aggregator": "upgrad", "structure_aware": True},
}
# The tree the RSA procedure found for mnist_multitask at budget 36000 (docs/results.md, Sec. 3;
# tasks digit, parity, ge5, position, rotation, scale, mask): f1 shared, f2 {digit} {rest},
# f3 {digit} {parity, position, scale, mask} {ge5, rotation}.
MNIST_MULTITASK_TREE = [[[0, 1, 2, 3, 4, 5, 6]], [[0], [1, 2, 3, 4, 5, 6]], [[0], [1, 3, 5, 6], [2, 4]]]


def schemes(name: str) -> tuple[tuple[str, dict[str, Any]], tuple[str, dict[str, Any]]]:
    """(hard sharing, learned sharing) for a task set, with their scheme options.

    mnist_multitask: ``shared_encoder`` (= parallel, one block call per group on its shared
    inputs instead of one per task) and ``branched`` over the RSA-learned tree: a Gumbel-Matrix
    over its conv core took 0.9 s per step here (every component on every task's copy of the
    shared input), 5.8 s with per-task gradients, too slow for this grid. 4-MNISTs:
    ``shared_bottom`` over the mnist4 modular network (every component used by every task)."""
    if name == "mnist_multitask":
        return ("shared_encoder", {}), ("branched", {"tree": MNIST_MULTITASK_TREE})
    if name == "mnist4":
        return ("shared_bottom", {"network": "mnist4"}), ("gumbel_matrix", {"network": "mnist4"})
    return ("parallel", {}), ("gumbel_matrix", {})


def write_diabetes(path: Path) -> None:
    """Raw-unit diabetes table: 7 inputs, 4 regression targets of very different scale."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(scaled=False, as_frame=True).frame.rename(columns={"target": "progression"})
    path.parent.mkdir(parents=True, exist_ok=True)
    frame[["age", "sex", "bmi", "bp", "s2", "s3", "s6", "progression", "s1", "s4", "s5"]].to_csv(path, index=False)


def cells(sets: list[str], seeds: list[int]) -> list[tuple[str, str, str, int]]:
    """The grid in the order it runs: the cheap dense sets (diabetes, uci10) seed by seed first,
    then the image sets seed-major (every image set gets seed 0 before any gets seed 1), so a
    grid cut short by the time box still has whole seeds of every set it reached."""
    def of(name: str, seed: int) -> list[tuple[str, str, str, int]]:
        hard, learned = (s for s, _ in schemes(name))
        return [(name, scheme, method, seed) for scheme in (hard, learned) for method in METHODS
                if not (method == "upgrad_aware" and scheme == hard)]

    dense = [n for n in sets if n in ("diabetes", "uci10")]
    images = [n for n in sets if n not in dense]
    return ([c for n in dense for seed in seeds for c in of(n, seed)]
            + [c for seed in seeds for n in images for c in of(n, seed)])


def config_for(name: str, scheme: str, method: str, seed: int, out: Path) -> dict[str, Any]:
    cfg = yaml.safe_load((ROOT / "configs" / "balancing" / f"{name}.yaml").read_text())
    cfg["scheme"], cfg["scheme_options"] = scheme, dict(dict(schemes(name))[scheme])
    cfg["seed"] = seed
    cfg["train"].update(METHODS[method])
    if name == "diabetes":
        cfg["tasks"]["options"]["path"] = str(out / "diabetes.csv")
    return cfg


def _claim(cell: Path) -> bool:
    """Take ``cell`` for this process (several processes share one grid): an atomic mkdir of
    ``cell.claim``; a claim whose process is gone is taken over."""
    claim = cell.parent / f"{cell.name}.claim"
    cell.parent.mkdir(parents=True, exist_ok=True)
    try:
        claim.mkdir()
    except FileExistsError:
        owner = (claim / "pid").read_text() if (claim / "pid").exists() else ""
        if owner and Path(f"/proc/{owner}").exists():
            return False
    (claim / "pid").write_text(str(os.getpid()))
    return True


def run_grid(args: argparse.Namespace) -> None:
    from sharewise.runner import run

    out = Path(args.out)
    if "diabetes" in args.sets and not (out / "diabetes.csv").exists():
        write_diabetes(out / "diabetes.csv")
    for name, scheme, method, seed in cells(args.sets, args.seeds):
        cell = out / name / scheme / method / f"seed{seed}"
        if (cell / "summary.json").exists() or not _claim(cell):
            continue
        started = time.perf_counter()
        summary = run(config_for(name, scheme, method, seed, out), cell, data_dir=args.data_dir, overwrite=True)
        errors = {n: round(t.get("test_error", t.get("test_rmse", math.nan)), 4) for n, t in summary["tasks"].items()}
        print(f"{name} {scheme} {method} seed{seed}: test errors {errors} ({time.perf_counter() - started:.0f} s)",
              flush=True)


def _score(summary: dict[str, Any], train_std: dict[str, float] | None) -> float:
    """Mean test error over the classification tasks; diabetes: mean test RMSE / training std."""
    tasks = summary["tasks"]
    if train_std is None:
        return statistics.fmean(t["test_error"] for t in tasks.values() if "test_error" in t)
    return statistics.fmean(t["test_rmse"] / train_std[n] for n, t in tasks.items())


def _regression_rmse(summary: dict[str, Any]) -> float | None:
    """Mean test RMSE over the regression tasks of a mixed set (mnist_multitask: position,
    rotation, scale, mask, all targets in [0, 1] units), None if it has none."""
    rmse = [t["test_rmse"] for t in summary["tasks"].values() if "test_error" not in t]
    return statistics.fmean(rmse) if rmse else None


def _interval(values: list[float]) -> str:
    """mean +- 95 % t-interval half-width over seeds."""
    t95 = {2: 12.71, 3: 4.30, 4: 3.18, 5: 2.78}
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:.4f}"
    half = t95.get(len(values), 2.0) * statistics.stdev(values) / math.sqrt(len(values))
    return f"{mean:.4f} ± {half:.4f}"


def table(args: argparse.Namespace) -> None:
    out = Path(args.out)
    train_std = None
    for name in args.sets:
        if name == "diabetes" and (out / "diabetes.csv").exists():
            train_std = _diabetes_train_std(out)
        hard, learned = (s for s, _ in schemes(name))
        mixed = name == "mnist_multitask"  # classification and regression tasks
        what = ("RMSE / target std" if name == "diabetes" else
                "error of the classification tasks; regression: mean test RMSE" if mixed else "error")
        print(f"\n{name}: mean test {what} (mean ± 95 % t-interval over seeds; n = seeds finished)\n")
        extra = " raw RMSE per task |" if name == "diabetes" else " regression RMSE |" if mixed else ""
        print("| scheme | method | score | n | wall s / run |" + extra)
        print("|---|---|---|---|---|" + ("---|" if extra else ""))
        for scheme in (hard, learned):
            for method in METHODS:
                runs = sorted((out / name / scheme / method).glob("seed*/summary.json"))
                if not runs:
                    continue
                sums = [json.loads(p.read_text()) for p in runs]
                scores = [_score(s, train_std if name == "diabetes" else None) for s in sums]
                wall = statistics.fmean(s["wall_time_s"] for s in sums)
                row = f"| {scheme} | {method} | {_interval(scores)} | {len(sums)} | {wall:.0f} |"
                if name == "diabetes":
                    raw = {n: statistics.fmean(s["tasks"][n]["test_rmse"] for s in sums) for n in sums[0]["tasks"]}
                    row += " " + ", ".join(f"{n} {v:.3g}" for n, v in raw.items()) + " |"
                elif mixed:
                    row += f" {_interval([_regression_rmse(s) for s in sums])} |"
                print(row)


def _diabetes_train_std(out: Path) -> dict[str, float]:
    from sharewise.data.tasksets import build_tasks

    cfg = config_for("diabetes", "parallel", "equal", 0, out)
    tasks = build_tasks("table", data_dir=None, seed=0, options=cfg["tasks"]["options"])
    return {t.name: float(t.y_train.float().std()) for t in tasks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(SETS), type=lambda s: s.split(","))
    parser.add_argument("--seeds", default="0,1,2", type=lambda s: [int(v) for v in s.split(",")])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default="runs/balancing")
    parser.add_argument("--table", action="store_true", help="print the tables of finished cells")
    args = parser.parse_args()
    table(args) if args.table else run_grid(args)


if __name__ == "__main__":
    main()
