"""Markdown tables of the headline experiments (issue 16) from run directories of several seeds.

    python benchmarks/repro_headline.py RUN_ROOT [RUN_ROOT ...] [--accuracy] [--paired A,B ...]
        [--group-note rotation] [--frac 0.75] [--tol 0.05] [--curves FIG_DIR]

Each RUN_ROOT is one experiment (e.g. the ``--out`` of ``sharewise compare``; every
``summary.json`` below it is one run, grouped by scheme, with the budget in the label:
``gumbel_matrix b=0.75``). Printed per experiment: mean test error (``--accuracy``: accuracy) with
its 95 % t-interval and the per-seed values, the learning curve's mean validation error at 75 %
and at 100 % of the steps with the number of flat runs, the selected step and the wall time; the
learned structure of every run (soft orders as the argmax layer per depth per task and their
entropy, Gumbel-Matrix allocations as bit strings with the active fraction, whether the
allocation splits the task groups named by ``--group-note``, the ARI against task families when
the tasks carry a ``family`` note); and paired t-tests ``--paired A,B`` (A - B over common seeds).
Definitions: ``sharewise.reporting.headline``. Defaults for the known experiments: with
gumbel_matrix and shared_bottom runs, ``--paired gumbel_matrix,shared_bottom``; with tasks noted
by ``rotation`` (4-MNISTs), ``--group-note rotation``.

Examples (issue 16)::

    python benchmarks/repro_headline.py /work/runs/lead/omniglot50_r28_split10 /work/runs/lead/omniglot50_r28_split20
    python benchmarks/repro_headline.py /work/runs/lead/mnist4_full --accuracy
    python benchmarks/repro_headline.py /work/runs/lead/omniglot20_reduced /work/runs/lead/clusters
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sharewise.errors import SharewiseError
from sharewise.reporting.headline import headline_markdown, load_runs, plot_validation_curves, task_groups


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("roots", nargs="+", metavar="RUN_ROOT")
    ap.add_argument("--accuracy", action="store_true", help="report test accuracy %% instead of test error %%")
    ap.add_argument("--paired", action="append", default=None, metavar="A,B",
                    help="paired t-test of scheme label A minus B over seeds (repeatable)")
    ap.add_argument("--group-note", default=None,
                    help="task note that groups the tasks for the split test (4-MNISTs: rotation)")
    ap.add_argument("--frac", type=float, default=0.75, help="early point of the flatness check (fraction of steps)")
    ap.add_argument("--tol", type=float, default=0.05,
                    help="flat: validation error fell by less than this fraction of its value at --frac")
    ap.add_argument("--curves", default=None, metavar="FIG_DIR",
                    help="write FIG_DIR/<experiment>_validation.png: each experiment's validation curves")
    args = ap.parse_args(argv)
    names: set[str] = set()
    try:
        for root in args.roots:
            runs = load_runs(root)
            labels = {r.label for r in runs}
            if args.paired is not None:
                pairs = [tuple(p.split(",", 1)) for p in args.paired]
            else:
                pairs = [(a, "shared_bottom") for a in sorted(labels) if a.startswith("gumbel_matrix")
                         and "shared_bottom" in labels]
            note = args.group_note
            if note is None and task_groups(runs[0].summary, "rotation") is not None:
                note = "rotation"
            print(headline_markdown(runs, title=str(root), accuracy=args.accuracy, paired=pairs,  # type: ignore[arg-type]
                                    group_note=note, frac=args.frac, tol=args.tol))
            if args.curves is not None:
                name = Path(root).resolve().name or "runs"
                name = name if name not in names else f"{name}_{len(names)}"
                names.add(name)
                figure = plot_validation_curves(runs, Path(args.curves) / f"{name}_validation.png", str(root),
                                                args.frac)
                print(f"learning curves: {figure}")
    except SharewiseError as err:
        print(f"repro_headline: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
