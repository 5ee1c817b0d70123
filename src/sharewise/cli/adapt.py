"""``sharewise adapt PARENT_RUN_DIR CONFIG``: train new tasks over a finished run's frozen blocks."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("adapt", help="train new tasks over the frozen shared blocks of a finished run")
    p.add_argument("parent", metavar="PARENT_RUN_DIR")
    p.add_argument("config", metavar="CONFIG", help="a config whose tasks (and train, seed, name) are the new ones")
    p.add_argument("--out", required=True, help="the new run directory")
    p.add_argument("--attach", default=None,
                   help="branched parents: comma-separated parent task per new task (empty: the default rule)")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--report", action="store_true")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.set_defaults(handler=cmd_adapt)


def cmd_adapt(args: argparse.Namespace) -> int:
    from sharewise.adapt import adapt
    from sharewise.cli.commands import _print_result, load_config

    cfg = load_config(args.config, args.overrides, **{"train.steps": args.steps, "seed": args.seed})
    attach = None if args.attach is None else [a.strip() or None for a in args.attach.split(",")]
    summary = adapt(args.parent, cfg, args.out, data_dir=args.data_dir, overwrite=args.overwrite, attach=attach,
                    progress=True)
    if summary is not None:
        if args.report:  # a step on the finished run, as for `sharewise run --report`
            from sharewise.reporting.report import write_report

            write_report([Path(args.out)], args.out)
        _print_result(summary, args.out)
    return 0
