"""``sharewise branch AFFINITY_JSON --budget PARAMS --out DIR`` and ``sharewise delta-m``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sharewise.errors import ConfigError


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("branch", help="find the branched tree of least cost within a parameter budget")
    p.add_argument("affinity", help="affinity.json written by `sharewise affinity`")
    p.add_argument("--budget", type=int, required=True, help="the largest number of parameters")
    p.add_argument("--beam", type=int, default=None,
                   help="beam width n (default: exhaustive search up to 6 tasks, else beam 10)")
    p.add_argument("--out", required=True, help="folder for tree.json and tree.png")
    p.add_argument("--config", default=None, help="check that the affinity's tasks are this config's tasks")
    p.add_argument("--data-dir", default=None)
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.set_defaults(handler=cmd_branch)

    p = sub.add_parser("delta-m", help="Delta_m of runs against a single-task baseline (Maninis et al.)")
    p.add_argument("runs", nargs="+", help="run directories of one model (its seeds)")
    p.add_argument("--baseline", required=True, help="comma-separated single-task run directories")
    p.set_defaults(handler=cmd_delta_m)


def read_affinity(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no affinity file at {str(path)!r}; write one with `sharewise affinity`")
    from sharewise.readers import read_json

    data = read_json(path, "affinity file (affinity.json from `sharewise affinity`)")
    missing = [k for k in ("tasks", "affinity", "block_params", "head_params") if k not in data]
    if missing:
        raise ConfigError(f"{str(path)!r} lacks {missing}; write it with `sharewise affinity`")
    _check_affinity(path, data)
    return data


def _check_affinity(path: Path, data: dict[str, Any]) -> None:
    """The shapes the tree search relies on: [D, N, N] finite affinities, D block and N head counts."""
    import numpy as np

    tasks = data["tasks"]
    problems = []
    if not isinstance(tasks, list) or len(tasks) < 2 or not all(isinstance(t, str) for t in tasks):
        problems.append(f"'tasks' must list at least 2 task names, got {tasks!r}")
    else:
        n = len(tasks)
        try:
            aff = np.asarray(data["affinity"], dtype=float)
        except (TypeError, ValueError):
            aff = None
        if aff is None or aff.ndim != 3 or aff.shape[1:] != (n, n) or not np.isfinite(aff).all():
            got = "not numbers" if aff is None else f"shape {list(aff.shape)}"
            problems.append(f"'affinity' must be finite numbers of shape [depth, {n}, {n}], got {got}")
        blocks = data["block_params"]
        if (not isinstance(blocks, list) or (aff is not None and aff.ndim == 3 and len(blocks) != aff.shape[0])
                or not all(isinstance(b, int) and b >= 0 for b in blocks)):
            problems.append(f"'block_params' must be one non-negative integer per depth, got {blocks!r}")
        heads = data["head_params"]
        if (not isinstance(heads, dict) or sorted(heads) != sorted(tasks)
                or not all(isinstance(h, int) and h >= 0 for h in heads.values())):
            problems.append(f"'head_params' must map each task to a non-negative integer, got {heads!r}")
    if problems:
        raise ConfigError(f"{str(path)!r} is not a valid affinity file: {'; '.join(problems)}. Write it with "
                          f"`sharewise affinity`")


def check_tasks(affinity_tasks: list[str], config_tasks: list[str]) -> None:
    if affinity_tasks != config_tasks:
        raise ConfigError(f"the affinity file's tasks {affinity_tasks} do not match the config's tasks "
                          f"{config_tasks}; run `sharewise affinity` on this config")


def cmd_branch(args: argparse.Namespace) -> int:
    if args.budget < 1:
        raise ConfigError(f"--budget must be a positive number of parameters, got {args.budget}")
    if args.beam is not None and args.beam < 1:
        raise ConfigError(f"--beam must be a positive beam width, got {args.beam}")
    from sharewise.rundir import check_output_dir

    check_output_dir(args.out)
    data = read_affinity(args.affinity)
    if args.config:
        from sharewise.cli.commands import load_config
        from sharewise.config import parse_config
        from sharewise.data.tasksets import build_tasks

        cfg = parse_config(load_config(args.config, args.overrides))
        tasks = build_tasks(cfg.tasks.builder, data_dir=args.data_dir, seed=cfg.seed, options=cfg.tasks.options)
        check_tasks(list(data["tasks"]), [t.name for t in tasks])
    from sharewise.analysis import best_tree
    from sharewise.reporting.plots import save
    from sharewise.rundir import claim_output_dir
    from sharewise.training.io import write_json

    tree = best_tree(data, args.budget, args.beam)
    out = claim_output_dir(args.out)
    write_json(out / "tree.json", tree)
    from sharewise.reporting.tree_plots import plot_tree

    fig, _ = plot_tree(tree["partitions"], title=f"{tree['params']} params, cost {tree['cost']:.3f}")
    save(fig, out / "tree.png", dpi=120)
    print(f"tree with {tree['params']} parameters (budget {args.budget}), cost {tree['cost']:.4f}: "
          f"{tree['partitions']} -> {out / 'tree.json'}")
    return 0


def cmd_delta_m(args: argparse.Namespace) -> int:
    from sharewise.reporting.delta_m_runs import delta_m_of_runs, markdown_rows

    baseline = [b for b in args.baseline.split(",") if b]
    result = delta_m_of_runs(args.runs, baseline)
    print(markdown_rows([(result["scheme"], result)]))
    return 0
