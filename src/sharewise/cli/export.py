"""``sharewise export RUN_DIR --task NAME``: one task of a finished run as a plain module."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("export", help="write one task of a finished run as TorchScript + state dict")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--task", required=True, help="the task's name (see the run's summary.json)")
    p.add_argument("--out", default=None, help="folder for the files (default RUN_DIR/export/<task>)")
    p.add_argument("--data-dir", default=None, help="where the data lives (default: the run's)")
    p.set_defaults(handler=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from sharewise.export import export_run

    info = export_run(args.run_dir, args.task, out=args.out, data_dir=args.data_dir)
    mt, ex = info["multi_task"], info["exported"]
    print(f"task {info['task']} of {info['scheme']}: {ex['parameters']} numbers, "
          f"{ex['multiply_adds_per_sample']} multiply-adds per sample (multi-task model: {mt['parameters']} numbers, "
          f"{mt['multiply_adds_per_sample_this_task']} for this task, {mt['multiply_adds_per_sample_all_tasks']} for "
          f"all tasks); equal on {info['test_check']['samples']} test samples (max |diff| "
          f"{info['test_check']['max_abs_diff']:.2g}) -> {info['files']['torchscript']}")
    return 0
