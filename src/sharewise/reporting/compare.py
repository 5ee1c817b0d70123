"""Aggregate run directories into a scheme comparison with 95 % confidence intervals.

The interval is mean +- t_{0.975, n-1} * std / sqrt(n) over seeds (Student's t, sample std),
the usual choice for a handful of trials; with n = 1 no interval is given. Up to
:data:`~sharewise.reporting.task_results.MANY_TASKS` tasks the table has a column per task;
above that it shows per-scheme aggregates over tasks (mean, median, wins) and the per-task numbers
go to ``comparison_long.csv`` (always written; see :mod:`sharewise.reporting.task_results`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scipy import stats

from sharewise.reporting import plots
from sharewise.reporting.run_plots import curve
from sharewise.reporting.task_results import GROUPS, MANY_TASKS, long_csv, over_tasks, plot_scheme_scatter
from sharewise.summary import headline_key
from sharewise.training.io import read_jsonl, write_json, write_text


def describe(values: Sequence[float]) -> dict[str, Any]:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n) if n > 1 else None
    return {"mean": mean, "std": std, "n": n, "ci95": half, "values": list(values)}


def aggregate(summaries: Mapping[str, Sequence[dict[str, Any]]]) -> dict[str, Any]:
    """scheme -> list of summary.json dicts (one per seed) -> the comparison structure."""
    out: dict[str, Any] = {"schemes": {}}
    for scheme, runs in summaries.items():
        if not runs:
            continue
        entry: dict[str, Any] = {"seeds": [r["seed"] for r in runs]}
        if headline_key(runs) == "mean_test_error":  # the headline is the error only if every run has one
            entry["mean_test_error"] = describe([r["mean_test_error"] for r in runs])
        for key in ("mean_test_r2", "mean_test_auc"):
            if all(r.get(key) is not None for r in runs):
                entry[key] = describe([r[key] for r in runs])
        entry["mean_test_loss"] = describe([r["mean_test_loss"] for r in runs])
        entry["wall_time_s"] = describe([r["wall_time_s"] for r in runs])
        tasks: dict[str, Any] = {}
        for name in runs[0]["tasks"]:
            metrics = {}
            for key in ("test_error", "test_auc", "test_loss", "test_rmse", "test_mae", "test_r2"):
                vals = [r["tasks"][name][key] for r in runs if key in r["tasks"].get(name, {})]
                if len(vals) == len(runs):
                    metrics[key] = describe(vals)
            tasks[name] = metrics
        entry["tasks"] = tasks
        out["schemes"][scheme] = entry
    for scheme, groups in over_tasks(summaries).items():
        out["schemes"][scheme]["over_tasks"] = groups
    return out


def _fmt(d: dict[str, Any] | None, pct: bool) -> str:
    if d is None:
        return "-"
    scale = 100.0 if pct else 1.0
    text = f"{d['mean'] * scale:.2f}"
    if d.get("ci95") is not None:
        text += f" ± {d['ci95'] * scale:.2f}"
    return text


def _task_cell(m: dict[str, Any]) -> str:
    if "test_error" in m:
        return _fmt(m.get("test_error"), True)
    text = _fmt(m.get("test_rmse"), False)
    return text + (f" (R² {m['test_r2']['mean']:.3f})" if m.get("test_r2") else "")


_NOTE = ("\nValues: mean ± 95 % confidence half-width over seeds (Student's t). Test split, "
         "best checkpoint by summed validation loss.\n")


def markdown_table(comparison: dict[str, Any]) -> str:
    """Rows: schemes; columns: headline means, then each task's error (%) or RMSE (R^2) when
    there are at most MANY_TASKS tasks, else aggregates over tasks (:func:`many_tasks_table`)."""
    schemes = comparison["schemes"]
    if not schemes:
        return "(no finished runs)\n"
    first = next(iter(schemes.values()))
    if len(first["tasks"]) > MANY_TASKS:
        return many_tasks_table(comparison)
    task_cols = list(first["tasks"])
    has_err = "mean_test_error" in first
    has_r2 = "mean_test_r2" in first
    head = ["scheme", "n", "mean test error %" if has_err else "mean test loss"]
    head += ["mean test R²"] if has_r2 else []
    for t in task_cols:
        head.append(f"{t} {'error %' if 'test_error' in first['tasks'][t] else 'RMSE'}")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, e in schemes.items():
        main = _fmt(e.get("mean_test_error"), True) if has_err else _fmt(e["mean_test_loss"], False)
        row = [name, str(e["mean_test_loss"]["n"]), main] + ([_fmt(e.get("mean_test_r2"), False)] if has_r2 else [])
        row += [_task_cell(e["tasks"].get(t, {})) for t in task_cols]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n" + _NOTE


def many_tasks_table(comparison: dict[str, Any]) -> str:
    """One row per scheme: for each metric group (classification error, regression R^2), the
    mean and median over tasks and the number of tasks won, each mean ± CI over seeds."""
    schemes = comparison["schemes"]
    groups = [g for g in GROUPS if any(g in e.get("over_tasks", {}) for e in schemes.values())]
    head = ["scheme", "n"]
    for g in groups:
        label = GROUPS[g][2]
        n = max(e["over_tasks"][g]["n_tasks"] for e in schemes.values() if g in e.get("over_tasks", {}))
        head += [f"mean {label} ({n} tasks)", f"median {label}", f"wins ({label})"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, e in schemes.items():
        row = [name, str(e["mean_test_loss"]["n"])]
        for g in groups:
            d = e.get("over_tasks", {}).get(g, {})
            pct = g == "error"
            wins = d.get("wins")
            row += [_fmt(d.get("mean"), pct), _fmt(d.get("median"), pct),
                    (f"{wins['mean']:.1f}" + (f" ± {wins['ci95']:.1f}" if wins.get("ci95") is not None else ""))
                    if wins else "-"]
        lines.append("| " + " | ".join(row) + " |")
    note = (f"\n{len(next(iter(schemes.values()))['tasks'])} tasks: aggregates over tasks of each task's "
            "main metric (test error for classification, lower is better; test R² for regression, higher "
            "is better), computed per seed; wins count the tasks on which a scheme is best (ties count "
            "for each). Per-task numbers: comparison_long.csv (scheme, seed, task, metric, value).\n")
    return "\n".join(lines) + "\n" + _NOTE + note


def write_comparison(out: Path, run_dirs: Mapping[str, Sequence[Path]]) -> dict[str, Any]:
    from sharewise.rundir import read_summary

    summaries = {s: [read_summary(d) for d in dirs] for s, dirs in run_dirs.items()}
    comparison = aggregate(summaries)
    write_json(out / "comparison.json", comparison)
    write_text(out / "comparison.md", markdown_table(comparison))
    write_text(out / "comparison_long.csv", long_csv(summaries))
    if len(summaries) > 1:
        fig, _ = plot_scheme_scatter(summaries)
        plots.save(fig, out / "scatter.png")
    key = headline_key(r for runs in summaries.values() for r in runs)
    curves = {s: [curve(read_jsonl(d / "metrics.jsonl"), key) for d in dirs] for s, dirs in run_dirs.items()}
    fig, _ = plots.plot_error_curves(curves, ylabel=key.replace("_", " "))
    plots.save(fig, out / "curves.png")
    return comparison
