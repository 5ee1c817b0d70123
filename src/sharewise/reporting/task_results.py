"""Per-task results that stay readable at 100+ tasks: long format, aggregates over tasks, scatter.

A comparison over many tasks cannot be one row with a column per task. Instead:

- every per-task number goes to a long-format CSV (``scheme, seed, task, metric, value``), the
  shape pandas, R and spreadsheets pivot easily;
- each scheme is summarised over tasks by the mean and median of the tasks' main metric and by
  how many tasks it wins, each computed per seed and then given an interval over seeds
  (:func:`sharewise.reporting.compare.describe`);
- a scheme-vs-baseline scatter (one point per task) shows where a scheme helps or hurts.

The main metric of a task: test error for classification (lower is better), test R^2 for
regression (higher is better; scale-free, so it can be averaged across tasks in different units).
Regression runs written before R^2 existed fall back to RMSE (lower is better).
"""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

MANY_TASKS = 12  # above this, comparisons show aggregates over tasks instead of a column per task
GROUPS: dict[str, tuple[str, bool, str]] = {  # group -> (summary key, higher is better, label)
    "error": ("test_error", False, "test error %"),
    "r2": ("test_r2", True, "test R²"),
    "rmse": ("test_rmse", False, "test RMSE"),
}


def main_metric(entry: Mapping[str, Any]) -> str | None:
    """The group (key of :data:`GROUPS`) whose metric is this task entry's main one."""
    if "test_error" in entry:
        return "error"
    if entry.get("test_r2") is not None:
        return "r2"
    return "rmse" if "test_rmse" in entry else None


def long_rows(summaries: Mapping[str, Sequence[dict[str, Any]]]) -> list[tuple[str, int, str, str, float]]:
    """(scheme, seed, task, metric, value) for every numeric per-task entry of every run."""
    rows = []
    for scheme, runs in summaries.items():
        for run in runs:
            for task, entry in run["tasks"].items():
                for metric, value in entry.items():
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        rows.append((scheme, int(run["seed"]), task, metric, float(value)))
    return rows


def long_csv(summaries: Mapping[str, Sequence[dict[str, Any]]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["scheme", "seed", "task", "metric", "value"])
    writer.writerows(long_rows(summaries))
    return buf.getvalue()


def task_means(summaries: Mapping[str, Sequence[dict[str, Any]]]) -> dict[str, dict[str, dict[str, float]]]:
    """group -> task -> scheme -> the task's main metric averaged over seeds."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for scheme, runs in summaries.items():
        if not runs:
            continue
        for task, entry in runs[0]["tasks"].items():
            group = main_metric(entry)
            if group is None:
                continue
            key = GROUPS[group][0]
            vals = [r["tasks"][task][key] for r in runs if r["tasks"].get(task, {}).get(key) is not None]
            if vals:
                out.setdefault(group, {}).setdefault(task, {})[scheme] = sum(vals) / len(vals)
    return out


def over_tasks(summaries: Mapping[str, Sequence[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """scheme -> group -> {"n_tasks", "mean", "median", "wins"}, each a ``describe`` over seeds.

    Wins at one seed: the tasks on which this scheme's main metric is the best among the schemes
    run with that seed (ties count for every tied scheme). With a single scheme there is nothing
    to win and ``wins`` is left out.
    """
    from sharewise.reporting.compare import describe

    by_seed: dict[int, dict[str, dict[str, Any]]] = {}
    for scheme, runs in summaries.items():
        for r in runs:
            by_seed.setdefault(int(r["seed"]), {})[scheme] = r
    per: dict[str, dict[str, dict[str, list[float]]]] = {}  # scheme -> group -> stat -> [per seed]
    for runs in by_seed.values():
        values: dict[str, dict[str, dict[str, float]]] = {}  # group -> task -> scheme -> value
        for scheme, r in runs.items():
            for task, entry in r["tasks"].items():
                group = main_metric(entry)
                if group is not None:
                    values.setdefault(group, {}).setdefault(task, {})[scheme] = float(entry[GROUPS[group][0]])
        for group, tasks in values.items():
            higher = GROUPS[group][1]
            wins: dict[str, int] = dict.fromkeys(runs, 0)
            for vals in tasks.values():
                best = max(vals.values()) if higher else min(vals.values())
                for scheme, v in vals.items():
                    wins[scheme] += int(v == best)
            for scheme in runs:
                own = [vals[scheme] for vals in tasks.values() if scheme in vals]
                if not own:
                    continue
                stats = per.setdefault(scheme, {}).setdefault(group, {"mean": [], "median": [], "wins": [], "n": []})
                stats["mean"].append(sum(own) / len(own))
                stats["median"].append(statistics.median(own))
                stats["wins"].append(float(wins[scheme]))
                stats["n"].append(float(len(own)))
    out: dict[str, dict[str, Any]] = {}
    for scheme, groups in per.items():
        for group, stats in groups.items():
            entry = {"n_tasks": int(max(stats["n"])), "mean": describe(stats["mean"]),
                     "median": describe(stats["median"])}
            if len(summaries) > 1:
                entry["wins"] = describe(stats["wins"])
            out.setdefault(scheme, {})[group] = entry
    return out


def plot_scheme_scatter(summaries: Mapping[str, Sequence[dict[str, Any]]], baseline: str | None = None,
                        fig: Any = None) -> tuple[Any, Any]:
    """One panel per (other scheme, metric group): each task's main metric under ``baseline`` (x)
    against the scheme's (y), averaged over seeds; points above the diagonal are better for R^2,
    below it for error. Legible at any number of tasks (no per-task labels)."""
    from sharewise.reporting import plots

    means = task_means(summaries)
    schemes = [s for s in summaries if summaries[s]]
    baseline = baseline if baseline in schemes else ("single_task" if "single_task" in schemes else schemes[0])
    others = [s for s in schemes if s != baseline]
    panels = [(s, g) for g in means for s in others]
    cols = min(4, max(1, len(panels)))
    rows = max(1, -(-len(panels) // cols))
    if fig is None:
        fig = plots.plt.figure(figsize=(3.4 * cols, 3.2 * rows + 0.4))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, (scheme, group) in zip(axes.flat, panels):
        key, higher, label = GROUPS[group]
        scale = 100.0 if group == "error" else 1.0
        pts = [(v[baseline] * scale, v[scheme] * scale) for v in means[group].values() if baseline in v and scheme in v]
        if not pts:
            ax.axis("off")
            continue
        xs, ys = zip(*pts)
        better = sum((y > x) if higher else (y < x) for x, y in pts)
        ax.scatter(xs, ys, s=10, alpha=0.6, edgecolors="none")
        lo, hi = min(min(xs), min(ys)), max(max(xs), max(ys))
        ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--")
        ax.set_title(f"{scheme}: better on {better}/{len(pts)}", fontsize=9)
        ax.set_xlabel(f"{baseline} {label}", fontsize=8)
        ax.set_ylabel(f"{scheme} {label}", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"Per-task main metric vs {baseline} (one point per task, mean over seeds)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.4 / fig.get_figheight()))  # room for the suptitle
    return fig, axes
