"""Compare schemes: run the (scheme, seed) grid, then the comparison table, curves and report.

Used by ``sharewise compare``, ``sharewise demo`` and the reproduction benchmarks. The grid runs
through :mod:`sharewise.sweep` (worker processes, resumable cells); the outputs are written by
:mod:`sharewise.reporting`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def compare(data: dict[str, Any], schemes: list[str], seeds: list[int], out: Path,
            data_dir: str | None, quiet: bool = False, jobs: int = 1, report: bool = True,
            overwrite: bool = False, command: str = "the same command") -> dict[str, Any]:
    """Run the (scheme, seed) grid into ``out/<scheme>/seed<N>`` (see ``sharewise.sweep``)."""
    from sharewise.reporting.compare import markdown_table, write_comparison
    from sharewise.sweep import CellResult, run_grid

    def show(res: CellResult) -> None:
        if not quiet:
            status = res.message if res.ok else "FAILED: " + res.message.strip().splitlines()[-1]
            print(f"  {res.scheme:<24} seed {res.seed}: {status}  ({res.seconds:.1f} s)", flush=True)

    results = run_grid(data, schemes, seeds, out, data_dir, jobs=jobs, on_result=show, overwrite=overwrite,
                       command=command)
    failed = [r for r in results if not r.ok]
    run_dirs = {s: [r.path for r in sorted(results, key=lambda r: r.seed) if r.scheme == s and r.ok]
                for s in schemes}
    comparison = write_comparison(out, {s: d for s, d in run_dirs.items() if d})
    written = [out / "comparison.json", out / "comparison.md", out / "curves.png"]
    finished = [d for dirs in run_dirs.values() for d in dirs]
    if report and finished:
        from sharewise.reporting.report import write_report

        written += list(write_report(finished, out))
    if not quiet:
        print()
        print(markdown_table(comparison))
        print(f"written: {', '.join(str(p) for p in written)}")
    if failed:
        from sharewise.errors import TrainingError

        cells = "; ".join(f"{r.scheme} seed {r.seed}: {r.message.strip().splitlines()[-1]}" for r in failed)
        raise TrainingError(f"{len(failed)} of {len(results)} cells failed ({cells}). The comparison covers the "
                            f"finished cells; fix the problem and re-run the same command to run only the missing ones.")
    return comparison
