"""Delta_m of finished runs against a single-task baseline run (Branched networks, App. A Eq. 1).

Each task's metric is read from ``summary.json``: ``test_error`` for classification and
``test_rmse`` for regression (both lower-is-better). With several seeds, the baseline metric is
the mean over the baseline's seeds and Delta_m is computed per model seed, then averaged.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sharewise.analysis import delta_m, delta_m_per_task
from sharewise.errors import ConfigError


def read_summary(run_dir: str | Path) -> dict[str, Any]:
    from sharewise.rundir import read_summary as read

    return read(run_dir)


def task_metrics(summary: dict[str, Any]) -> tuple[dict[str, float], dict[str, bool]]:
    """task -> metric (test error or RMSE) and task -> lower_is_better (always True here)."""
    metrics = {name: float(e["test_rmse"] if "test_rmse" in e else e["test_error"])
               for name, e in summary["tasks"].items()}
    return metrics, {name: True for name in metrics}


def mean_metrics(summaries: Sequence[dict[str, Any]]) -> dict[str, float]:
    per = [task_metrics(s)[0] for s in summaries]
    return {t: statistics.fmean(m[t] for m in per) for t in per[0]}


def delta_m_of_runs(runs: Sequence[str | Path], baseline: Sequence[str | Path]) -> dict[str, Any]:
    """Delta_m (fraction) of ``runs`` (seeds of one model) against ``baseline`` (seeds of single task)."""
    base_summaries = [read_summary(r) for r in baseline]
    base = mean_metrics(base_summaries)
    summaries = [read_summary(r) for r in runs]
    if not summaries:
        raise ConfigError("no run directories given")
    values, terms = [], []
    for s in summaries:
        metrics, lower = task_metrics(s)
        if set(metrics) != set(base):
            raise ConfigError(f"run {s.get('name')!r} ({s.get('scheme')}) has tasks {sorted(metrics)} but the "
                              f"baseline has tasks {sorted(base)}")
        values.append(delta_m(metrics, base, lower))
        terms.append(delta_m_per_task(metrics, base, lower))
    return {
        "scheme": summaries[0]["scheme"],
        "n_parameters": summaries[0]["n_parameters"],
        "seeds": [s["seed"] for s in summaries],
        "metrics": mean_metrics(summaries),
        "delta_m": statistics.fmean(values),
        "delta_m_std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "delta_m_per_task": {t: statistics.fmean(d[t] for d in terms) for t in terms[0]},
        "wall_time_s": statistics.fmean(s["wall_time_s"] for s in summaries),
    }


def markdown_rows(rows: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """A Table-1-like markdown table: method, metric per task, parameters, Delta_m (%)."""
    tasks = list(rows[0][1]["metrics"])
    head = "| method | " + " | ".join(tasks) + " | params | Delta_m (%) | wall (s) |"
    lines = [head, "|" + "---|" * (len(tasks) + 4)]
    for label, r in rows:
        cells = " | ".join(f"{r['metrics'][t]:.4f}" for t in tasks)
        dm = f"{100 * r['delta_m']:+.2f} ± {100 * r['delta_m_std']:.2f}"
        lines.append(f"| {label} | {cells} | {r['n_parameters']} | {dm} | {r['wall_time_s']:.0f} |")
    return "\n".join(lines)
