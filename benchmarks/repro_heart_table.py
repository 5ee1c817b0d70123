"""The real multi-label table run of docs/results.md: every scheme on UCI heart disease, six tasks.

Usage: python benchmarks/repro_heart_table.py --data-dir ../shared/data --out runs/heart [--seeds 0,1] [--jobs 1]

1. writes ``OUT/heart.csv`` (benchmarks/make_heart_table.py: the original file with its UCI column
   names) and trains ``configs/table/heart.yaml`` (six target columns as tasks: multiclass
   diagnosis, thal and ca with missing labels, binary exang, regression thalach and chol);
2. every scheme with its defaults, except the two that need a structure given to them:
   ``no_sharing`` (one modular component per task: ``scheme_options.n_components=6``) and
   ``branched`` (its tree found by the library's own pipeline: RSA affinity of the finished
   single-task seed-0 networks, then the best tree within a budget halfway between the
   parallel and the single-task parameter counts, ``sharewise affinity`` + ``sharewise branch``);
3. writes one comparison over all cells (``OUT/compare/comparison.md``, ``comparison_long.csv``,
   ``report.html``). Finished cells are reused, so a stopped run continues where it was.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from make_heart_table import main as make_table  # noqa: E402

from sharewise.analysis import best_tree  # noqa: E402
from sharewise.cli.commands import load_config  # noqa: E402
from sharewise.pipelines.compare import compare  # noqa: E402
from sharewise.config import parse_config  # noqa: E402
from sharewise.config.io import apply_overrides  # noqa: E402
from sharewise.data.tasksets import build_tasks  # noqa: E402
from sharewise.pipelines.affinity import affinity_run  # noqa: E402
from sharewise.reporting.compare import markdown_table, write_comparison  # noqa: E402
from sharewise.reporting.report import write_report  # noqa: E402
from sharewise.sharing import available_schemes  # noqa: E402

SPECIAL = ("no_sharing", "branched")
ORDER = ("single_task", "no_sharing", "parallel", "shared_bottom", "shared_encoder", "permuted", "soft_ordering",
         "soft_ordering_uniform", "gumbel_matrix", "cross_stitch", "nddr", "branched")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--out", default="runs/heart")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--steps", type=int, default=None, help="override train.steps (smoke tests)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = out / "heart.csv"
    make_table(args.data_dir, str(table))
    seeds = [int(s) for s in args.seeds.split(",")]
    base = load_config(str(ROOT / "configs/table/heart.yaml"), [f"tasks.options.path={table.resolve()}"],
                       **{"train.steps": args.steps})
    cells = out / "compare"
    started = time.perf_counter()
    plain = [s for s in available_schemes() if s not in SPECIAL]
    compare(base, plain, seeds, cells, None, jobs=args.jobs, report=False)
    compare(apply_overrides(base, ["scheme_options.n_components=6"]), ["no_sharing"], seeds, cells, None,
            jobs=args.jobs, report=False)
    tree = out / "tree" / "tree.json"
    if not tree.exists():
        cfg = parse_config(base)
        n_val = build_tasks("table", data_dir=None, seed=0, options=cfg.tasks.options)[0].x_val.shape[0]
        affinity = affinity_run(base, out / "affinity", reuse=cells / "single_task" / f"seed{seeds[0]}",
                                k=int(n_val), plots=False)  # RDMs over every validation row
        n = {s: json.loads((cells / s / f"seed{seeds[0]}" / "summary.json").read_text())["n_parameters"]
             for s in ("parallel", "single_task")}
        found = best_tree(affinity, (n["parallel"] + n["single_task"]) // 2, None)
        tree.parent.mkdir(parents=True, exist_ok=True)
        tree.write_text(json.dumps(found, indent=1))
        print(f"branched tree {found['partitions']} ({found['params']} params, budget "
              f"{(n['parallel'] + n['single_task']) // 2})")
    compare(apply_overrides(base, [f"scheme_options.tree={tree.resolve()}"]), ["branched"], seeds, cells, None,
            jobs=args.jobs, report=False)
    schemes = [s for s in ORDER if s in available_schemes()] + [s for s in available_schemes() if s not in ORDER]
    dirs = {s: [cells / s / f"seed{k}" for k in seeds] for s in schemes}
    comparison = write_comparison(cells, dirs)
    write_report([d for ds in dirs.values() for d in ds], cells)
    print(markdown_table(comparison))
    print(f"all cells: {time.perf_counter() - started:.0f} s wall; written to {cells}")


if __name__ == "__main__":
    main()
