"""Error against the number of tasks k (soft-ordering paper, Fig. 6a) from run folders.

    python benchmarks/task_count_curve.py RUN_ROOT [RUN_ROOT ...] [--figure PATH.png]

Every ``summary.json`` under the roots is one run; runs are grouped by scheme and by k (the
number of tasks the run trained), and each cell is the mean test error over seeds with its 95 %
t-interval. Runs continued by ``sharewise extend`` are left out (listed). Definitions:
``sharewise.reporting.task_count``. Example (issue 16, pixels 0-16)::

    python benchmarks/task_count_curve.py /work/runs/lead/o50_p16_k5 /work/runs/lead/o50_p16_k10 \\
        /work/runs/lead/o50_p16_k20 /work/runs/lead/o50_p16 --figure k_curve.png
"""

from __future__ import annotations

import argparse
import sys

from sharewise.errors import SharewiseError
from sharewise.reporting.headline import load_runs
from sharewise.reporting.task_count import plot_task_count_curve, task_count_markdown, task_count_table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("roots", nargs="+", metavar="RUN_ROOT")
    ap.add_argument("--figure", default=None, help="also draw the curve into this image file")
    args = ap.parse_args(argv)
    try:
        runs = [run for root in args.roots for run in load_runs(root)]
        table, notes = task_count_table(runs)
        print(task_count_markdown(table))
        for note in notes:
            print(f"- {note}")
        if args.figure:
            from sharewise.reporting import plots

            fig, _ = plot_task_count_curve(table)
            plots.save(fig, args.figure)
            print(f"figure: {args.figure}")
    except SharewiseError as err:
        print(f"task_count_curve: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
