"""Plots for a finished run directory (reads summary.json and metrics.jsonl)."""

from __future__ import annotations

from pathlib import Path

from sharewise.reporting import plots
from sharewise.reporting.structure import structure_figures
from sharewise.summary import headline_key
from sharewise.errors import DataError
from sharewise.readers import read_json
from sharewise.training.io import read_jsonl


def curve(records: list[dict], key: str = "mean_test_error") -> list[tuple[int, float]]:
    return [(r["step"], r[key]) for r in records if r.get(key) is not None]


def plot_run(run_dir: str | Path) -> list[Path]:
    """Write the run's plots under ``run_dir/plots`` and return their paths."""
    run_dir = Path(run_dir)
    summary = read_json(run_dir / "summary.json", "run summary")
    if "scheme" not in summary:
        raise DataError(f"{run_dir / 'summary.json'}: a run summary needs 'scheme'; the file is damaged")
    records = read_jsonl(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").exists() else []
    out = run_dir / "plots"
    out.mkdir(exist_ok=True)
    written = []
    key = headline_key([summary])
    fig, _ = plots.plot_error_curves({summary["scheme"]: [curve(records, key)]},
                                     ylabel=key.replace("_", " "))
    plots.save(fig, out / "curves.png")
    written.append(out / "curves.png")
    figures, _ = structure_figures(summary, records)  # drawn by the run's scheme
    for f in figures:
        plots.save(f.figure, out / f"{f.name}.png")
        written.append(out / f"{f.name}.png")
    return written
