"""Aggregate run directories into a scheme comparison with 95 % confidence intervals.

The interval is mean +- t_{0.975, n-1} * std / sqrt(n) over seeds (Student's t, sample std),
the usual choice for a handful of trials; with n = 1 no interval is given.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scipy import stats

from sharewise.reporting import plots
from sharewise.reporting.run_plots import curve
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
        if all(r.get("mean_test_error") is not None for r in runs):
            entry["mean_test_error"] = describe([r["mean_test_error"] for r in runs])
        entry["mean_test_loss"] = describe([r["mean_test_loss"] for r in runs])
        entry["wall_time_s"] = describe([r["wall_time_s"] for r in runs])
        tasks: dict[str, Any] = {}
        for name in runs[0]["tasks"]:
            metrics = {}
            for key in ("test_error", "test_loss", "test_rmse"):
                vals = [r["tasks"][name][key] for r in runs if key in r["tasks"].get(name, {})]
                if len(vals) == len(runs):
                    metrics[key] = describe(vals)
            tasks[name] = metrics
        entry["tasks"] = tasks
        out["schemes"][scheme] = entry
    return out


def _fmt(d: dict[str, Any] | None, pct: bool) -> str:
    if d is None:
        return "-"
    scale = 100.0 if pct else 1.0
    text = f"{d['mean'] * scale:.2f}"
    if d.get("ci95") is not None:
        text += f" ± {d['ci95'] * scale:.2f}"
    return text


def markdown_table(comparison: dict[str, Any]) -> str:
    """Rows: schemes; columns: mean test error (%) then each task's error (%) or RMSE."""
    schemes = comparison["schemes"]
    if not schemes:
        return "(no finished runs)\n"
    first = next(iter(schemes.values()))
    task_cols = list(first["tasks"])
    has_err = "mean_test_error" in first
    head = ["scheme", "n", "mean test error %" if has_err else "mean test loss"]
    for t in task_cols:
        head.append(f"{t} {'error %' if 'test_error' in first['tasks'][t] else 'RMSE'}")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, e in schemes.items():
        main = _fmt(e.get("mean_test_error"), True) if has_err else _fmt(e["mean_test_loss"], False)
        row = [name, str(e["mean_test_loss"]["n"]), main]
        for t in task_cols:
            m = e["tasks"].get(t, {})
            row.append(_fmt(m.get("test_error"), True) if "test_error" in m else _fmt(m.get("test_rmse"), False))
        lines.append("| " + " | ".join(row) + " |")
    note = ("\nValues: mean ± 95 % confidence half-width over seeds (Student's t). Test split, "
            "best checkpoint by summed validation loss.\n")
    return "\n".join(lines) + "\n" + note


def write_comparison(out: Path, run_dirs: Mapping[str, Sequence[Path]]) -> dict[str, Any]:
    summaries = {s: [json.loads((d / "summary.json").read_text()) for d in dirs] for s, dirs in run_dirs.items()}
    comparison = aggregate(summaries)
    write_json(out / "comparison.json", comparison)
    write_text(out / "comparison.md", markdown_table(comparison))
    has_err = all(r.get("mean_test_error") is not None for runs in summaries.values() for r in runs)
    key = "mean_test_error" if has_err else "mean_test_loss"
    curves = {s: [curve(read_jsonl(d / "metrics.jsonl"), key) for d in dirs] for s, dirs in run_dirs.items()}
    fig, _ = plots.plot_error_curves(curves, ylabel=key.replace("_", " "))
    plots.save(fig, out / "curves.png")
    return comparison
