"""The run report: ``report.html`` (self-contained, plots embedded) and ``report.md``.

Reads run directories only (``summary.json``, ``metrics.jsonl``, ``config.yaml``). For each run:
the metadata, per-task metrics, learning curves, the learned structure and the resolved config;
for several runs first the comparison table (:mod:`sharewise.reporting.compare`) and curves.
The structure is drawn by the run's scheme (``SharingScheme.render_structure``, found through
the registry: soft orders, allocations, ...); what it does not draw is shown generically: per-task
matrices and square task-by-task matrices as heatmaps, scalars as a table, anything else (trees,
permutations) as data, so a new scheme's structure shows up without code here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sharewise.reporting import plots
from sharewise.reporting._document import Document
from sharewise.reporting.compare import aggregate, markdown_table
from sharewise.reporting.run_plots import curve
from sharewise.reporting.structure import structure_figures
from sharewise.summary import headline, headline_key
from sharewise.reporting.task_results import GROUPS, MANY_TASKS, plot_scheme_scatter, task_means
from sharewise.training.io import read_jsonl, write_text


def _load(run_dir: Path) -> dict[str, Any]:
    from sharewise.rundir import read_summary

    summary = read_summary(run_dir)
    metrics = run_dir / "metrics.jsonl"
    config = run_dir / "config.yaml"
    return {"dir": run_dir, "summary": summary,
            "records": read_jsonl(metrics) if metrics.exists() else [],
            "config": config.read_text(encoding="utf-8", errors="replace") if config.is_file() else None}


def _num(v: Any, pct: bool = False) -> str:
    if v is None:
        return "-"
    return f"{100 * v:.2f}" if pct else f"{v:.4g}"


def _metrics_table(doc: Document, summary: dict[str, Any]) -> None:
    rows = []
    for name, e in summary["tasks"].items():
        if "test_error" in e:
            rows.append([name, e["kind"], _num(e["test_error"], True), _num(e.get("test_auc")), "-", "-", "-",
                         _num(e.get("val_error"), True), _num(e.get("train_error"), True), _num(e["test_loss"])])
        else:
            rows.append([name, e["kind"], "-", "-", _num(e.get("test_rmse")), _num(e.get("test_mae")),
                         _num(e.get("test_r2")), f"RMSE {_num(e.get('val_rmse'))}",
                         f"RMSE {_num(e.get('train_rmse'))}", _num(e["test_loss"])])
    doc.table(["task", "kind", "test error %", "test AUC", "test RMSE", "test MAE", "test R²", "val error %",
               "train error %", "test loss"], rows, sortable=True)


def _learning_curves(records: list[dict[str, Any]], tasks: dict[str, Any]) -> Any:
    fig, (ax1, ax2) = plots.plt.subplots(1, 2, figsize=(11, 3.8))
    steps = [r["step"] for r in records]
    if len(tasks) > MANY_TASKS:  # a line per task is unreadable: median and 10-90 % band per metric
        for key, label in (("error", "test error (classification)"), ("rmse", "test RMSE (regression)")):
            names = [n for n, e in tasks.items() if f"test_{key}" in e]
            if not names:
                continue
            vals = np.array([[r["test"].get(n, {}).get(key, np.nan) for n in names] for r in records])  # [S, T]
            ax1.plot(steps, np.nanmedian(vals, 1), label=f"median {label}, {len(names)} tasks")
            ax1.fill_between(steps, np.nanpercentile(vals, 10, 1), np.nanpercentile(vals, 90, 1), alpha=0.2)
    else:
        for name, e in tasks.items():
            key = "error" if "test_error" in e else "rmse"
            ax1.plot(steps, [r["test"].get(name, {}).get(key, np.nan) for r in records],
                     label=f"{name} ({'error' if key == 'error' else 'RMSE'})")
    ax1.set(xlabel="step", ylabel="test error / RMSE", title="Per-task test metric")
    ax1.legend(fontsize=7)
    for key in ("train_loss", "val_loss", "mean_test_loss"):
        pts = curve(records, key)
        if pts:
            ax2.plot(*zip(*pts), label=key.replace("_", " "))
    ax2.set(xlabel="step", ylabel="loss", title="Losses", yscale="log")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _per_task_comparison(doc: Document, summaries: dict[str, list[dict[str, Any]]]) -> None:
    """A sortable task x scheme table of each task's main metric and the scheme-vs-baseline scatter."""
    means = task_means(summaries)
    schemes = list(summaries)
    kinds = {t: e["kind"] for runs in summaries.values() for t, e in runs[0]["tasks"].items()}
    rows = []
    for group, tasks in means.items():
        pct = group == "error"
        for task, vals in tasks.items():
            rows.append([task, kinds.get(task, "?"), GROUPS[group][2]]
                        + [_num(vals.get(s), pct) if s in vals else "-" for s in schemes])
    doc.para("Per-task main metric, mean over seeds (click a header to sort).")
    doc.table(["task", "kind", "metric", *schemes], rows, sortable=True)
    if len(schemes) > 1:
        doc.figure("scatter", plot_scheme_scatter(summaries)[0], "Each scheme against the baseline, one point per task")


def _heatmap(matrix: np.ndarray, rows: Sequence[str], title: str, cols: Sequence[str] | None = None) -> Any:
    many = matrix.shape[0] > MANY_TASKS  # smaller rows and labels so 139 tasks fit on a page
    row_h, font = (0.13, 5) if many else (0.35, 7)
    fig, ax = plots.plt.subplots(figsize=(min(14, 1.5 + (0.13 if many else 0.35) * matrix.shape[1]),
                                          1 + row_h * matrix.shape[0]))
    image = ax.imshow(matrix, cmap="viridis", aspect="auto", interpolation="nearest")
    plots.task_ticks(ax, list(rows), "y", fontsize=font)
    if cols is not None and len(cols) == matrix.shape[1]:
        plots.task_ticks(ax, list(cols), "x", fontsize=font - 1, rotation=90)
    ax.set_title(title)
    fig.colorbar(image, ax=ax)
    return fig


def _structure(doc: Document, summary: dict[str, Any], tag: str, records: Sequence[dict[str, Any]] = ()) -> None:
    """The scheme draws its structure (``render_structure``); what it leaves is shown as data."""
    if not summary.get("structure"):
        doc.para("This scheme has no learned or fixed structure to show.")
        return
    figures, structure = structure_figures(summary, records)
    names = structure.pop("tasks", None) or list(summary["tasks"])
    for f in figures:
        doc.figure(f"{tag}{f.name}", f.figure, f.caption)
    scalars, other = [], {}
    for key, value in structure.items():
        if isinstance(value, (int, float, str, bool)) or value is None:
            scalars.append([key, str(value)])
            continue
        matrix = _as_matrix(value, len(names))
        if matrix is None:
            other[key] = value
            continue
        square = matrix.shape == (len(names), len(names))
        doc.figure(f"{tag}{key}", _heatmap(matrix, names, key.replace("_", " "), names if square else None),
                   f"{key} ({'task x task' if square else 'task x component, layers concatenated'})")
    if scalars:
        doc.table(["structure", "value"], scalars)
    if other:
        doc.pre(json.dumps(other, indent=1), "json", summary="Other structure (trees, permutations, ...)")


def _as_matrix(value: Any, n_tasks: int) -> np.ndarray | None:
    """A per-task numeric structure as a [T, K] matrix, or None when it is not one."""
    if isinstance(value, dict) and len(value) == n_tasks:
        value = [value[k] for k in value]  # {task: [...]} ordered by task index
    if not isinstance(value, list) or len(value) != n_tasks:
        return None
    try:
        rows = [np.concatenate([np.ravel(np.asarray(part, dtype=float)) for part in row])
                if isinstance(row, list) and row and isinstance(row[0], list)
                else np.ravel(np.asarray(row, dtype=float)) for row in value]
    except (TypeError, ValueError):
        return None
    if len({r.size for r in rows}) != 1 or rows[0].size == 0:
        return None
    return np.stack(rows)


def _run_section(doc: Document, run: dict[str, Any], level: int, tag: str) -> None:
    s = run["summary"]
    meta = s.get("meta", {})
    doc.heading(f"{s['name']}: {s['scheme']}, seed {s['seed']}", level)
    doc.para(f"Directory {run['dir']}. {s['steps']} steps; best step {s['best_step']} "
             f"(selection by {s.get('selection', '?')}); {s.get('n_parameters', '?')} parameters; "
             f"wall time {s.get('wall_time_s', 0):.1f} s.")
    doc.para(f"sharewise {meta.get('sharewise')}, Python {meta.get('python')}, torch {meta.get('torch')}, "
             f"git {meta.get('git_revision') or 'n/a'}, {meta.get('threads')} thread(s), {meta.get('platform')}.")
    doc.para(f"Result: {headline(s)}.")
    _metrics_table(doc, s)
    if run["records"]:
        doc.figure(f"{tag}curves", _learning_curves(run["records"], s["tasks"]), "Learning curves")
    _structure(doc, s, tag, run["records"])
    if run["config"]:
        doc.pre(run["config"], "yaml", summary="Resolved configuration (config.yaml)")


def build_report(run_dirs: Sequence[str | Path], sections: Sequence[Callable[[Document], None]] = ()) -> Document:
    """``sections``: callables adding their own part after the comparison (e.g. the demo's
    family recovery), before the per-run sections."""
    runs = [_load(Path(d)) for d in run_dirs]
    if len(runs) == 1:
        doc = Document(f"sharewise run report: {runs[0]['summary']['name']}")
        _run_section(doc, runs[0], 2, "")
        return doc
    doc = Document(f"sharewise report: {len(runs)} runs")
    by_scheme: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by_scheme.setdefault(r["summary"]["scheme"], []).append(r)
    doc.heading("Comparison")
    summaries = {k: [r["summary"] for r in v] for k, v in by_scheme.items()}
    doc.markdown_table(markdown_table(aggregate(summaries)))
    _per_task_comparison(doc, summaries)
    key = headline_key(r["summary"] for r in runs)
    curves = {k: [curve(r["records"], key) for r in v] for k, v in by_scheme.items()}
    doc.figure("comparison_curves", plots.plot_error_curves(curves, ylabel=key.replace("_", " "))[0],
               f"{key.replace('_', ' ')} by step (mean over seeds, min-max band)")
    for section in sections:
        section(doc)
    doc.heading("Runs")
    for i, r in enumerate(runs):
        _run_section(doc, r, 3, f"run{i}_")
    return doc


def write_report(run_dirs: Sequence[str | Path], out: str | Path,
                 sections: Sequence[Callable[[Document], None]] = ()) -> tuple[Path, Path]:
    """Write ``out/report.html`` and ``out/report.md`` (+ ``out/report_files/*.png``)."""
    out = Path(out)
    doc = build_report(run_dirs, sections)
    html_path, md_path = out / "report.html", out / "report.md"
    write_text(html_path, doc.to_html())
    write_text(md_path, doc.to_markdown(out / "report_files", "report_files"))
    return html_path, md_path
