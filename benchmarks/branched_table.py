"""Print the reduced Table 1 (docs/results.md, section 3) from finished runs.

    python benchmarks/branched_table.py RUNS_ROOT [--labels scheme=label,...]

RUNS_ROOT holds ``<method>/seed<N>/summary.json`` (single_task is the Delta_m baseline); methods
are listed in the order below, when present.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sharewise.reporting.delta_m_runs import delta_m_of_runs, markdown_rows

ORDER = ["single_task", "shared_encoder", "cross_stitch", "nddr"]


def main(root: str) -> None:
    base = Path(root)
    methods = ORDER + sorted(p.name for p in base.iterdir() if p.name.startswith("branched"))
    baseline = sorted((base / "single_task").glob("seed*"))
    rows = []
    for m in methods:
        runs = sorted(p for p in (base / m).glob("seed*") if (p / "summary.json").is_file())
        if runs:
            r = delta_m_of_runs(runs, baseline)
            rows.append((f"{m} ({len(runs)} seed{'s' * (len(runs) > 1)})", r))
    print(markdown_rows(rows))


if __name__ == "__main__":
    main(sys.argv[1])
