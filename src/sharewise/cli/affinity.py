"""``sharewise affinity CONFIG --out DIR [--reuse RUN_DIR] [--inputs K]``: RSA task affinity."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("affinity", help="train single-task networks and write the task affinity (RSA)")
    p.add_argument("config")
    p.add_argument("--out", required=True, help="folder for affinity.json and the heatmaps")
    p.add_argument("--reuse", default=None, help="a finished single_task run directory to take the networks from")
    p.add_argument("--inputs", type=int, default=500, help="K held-out inputs for the RDMs (default 500)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--steps", type=int, default=None, help="override train.steps")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.set_defaults(handler=cmd_affinity)


def cmd_affinity(args: argparse.Namespace) -> int:
    from sharewise.cli.commands import load_config
    from sharewise.pipelines.affinity import affinity_run

    from sharewise.errors import ConfigError

    if args.inputs < 2:
        raise ConfigError(f"--inputs must be at least 2 held-out inputs (an RDM compares pairs), got {args.inputs}")
    if args.steps is not None and args.steps < 1:
        raise ConfigError(f"--steps must be a positive number of training steps, got {args.steps}")
    data = load_config(args.config, args.overrides, seed=args.seed, **{"train.steps": args.steps})
    result = affinity_run(data, args.out, data_dir=args.data_dir, reuse=args.reuse, k=args.inputs,
                          plots=not args.no_plots, progress=args.reuse is None)
    print(f"affinity of {len(result['tasks'])} tasks at {len(result['locations'])} locations on "
          f"K={args.inputs} inputs -> {args.out}/affinity.json")
    return 0
