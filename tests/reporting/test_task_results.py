"""Comparisons stay readable at many tasks: aggregates over tasks, long CSV, sortable table, scatter."""

from __future__ import annotations

import csv
import io
import statistics

import pytest

from sharewise.reporting._document import Document
from sharewise.reporting.compare import aggregate, markdown_table
from sharewise.reporting.task_results import long_csv, over_tasks, plot_scheme_scatter


def _summary(scheme: str, seed: int, r2: list[float], err: list[float]) -> dict:
    tasks = {f"r{i}": {"kind": "regression", "test_loss": 1.0, "test_rmse": 1 - v, "test_r2": v} for i, v in enumerate(r2)}
    tasks |= {f"c{i}": {"kind": "binary", "test_loss": 1.0, "test_error": v} for i, v in enumerate(err)}
    return {"scheme": scheme, "seed": seed, "tasks": tasks, "mean_test_loss": 1.0, "wall_time_s": 1.0,
            "mean_test_error": sum(err) / len(err), "mean_test_r2": sum(r2) / len(r2)}


def _summaries(n: int = 20) -> dict:
    a = [[0.1 * (i % 5) for i in range(n)], [0.1 * (i % 5) + 0.01 for i in range(n)]]
    b = [[0.25] * n, [0.25] * n]
    return {"single_task": [_summary("single_task", s, a[s], [0.2, 0.3]) for s in (0, 1)],
            "parallel": [_summary("parallel", s, b[s], [0.3, 0.2]) for s in (0, 1)]}


def test_over_tasks_mean_median_and_wins_per_seed() -> None:
    summ = _summaries()
    agg = over_tasks(summ)
    a0 = [0.1 * (i % 5) for i in range(20)]
    st = agg["single_task"]["r2"]
    assert st["n_tasks"] == 20
    assert st["mean"]["values"] == pytest.approx([sum(a0) / 20, sum(a0) / 20 + 0.01])
    assert st["median"]["values"] == pytest.approx([statistics.median(a0), statistics.median(a0) + 0.01])
    # R^2 higher is better: single_task wins where 0.1 * (i % 5) (+0.01) > 0.25, i.e. i % 5 in (3, 4)
    assert st["wins"]["values"] == [8.0, 8.0] and agg["parallel"]["r2"]["wins"]["values"] == [12.0, 12.0]
    # error lower is better: one classification task each
    assert agg["single_task"]["error"]["wins"]["values"] == [1.0, 1.0]


def test_many_tasks_markdown_is_one_row_per_scheme_and_long_csv_has_every_number() -> None:
    summ = _summaries()
    text = markdown_table(aggregate(summ))
    rows = [ln for ln in text.splitlines() if ln.startswith("| ")]
    assert len(rows) == 3 and "r19" not in text  # header + 2 schemes, no per-task column
    assert "mean test R² (20 tasks)" in rows[0] and "wins (test error %)" in rows[0]
    assert "comparison_long.csv" in text
    parsed = list(csv.DictReader(io.StringIO(long_csv(summ))))
    assert len(parsed) == 2 * 2 * (20 * 3 + 2 * 2)  # schemes x seeds x (regression 3 + binary 2 numbers per task)
    row = next(r for r in parsed if r["scheme"] == "parallel" and r["seed"] == "1" and r["task"] == "r3"
               and r["metric"] == "test_r2")
    assert float(row["value"]) == 0.25
    few = {k: [dict(r, tasks={t: e for t, e in r["tasks"].items() if t in ("r0", "c0")}) for r in v]
           for k, v in summ.items()}
    assert "r0 RMSE" in markdown_table(aggregate(few))  # few tasks: a column per task


def test_sortable_table_and_scatter() -> None:
    doc = Document("t")
    doc.table(["task", "x"], [["a", "1"]], sortable=True)
    html = doc.to_html()
    assert "<table class='sortable'>" in html and "<script>" in html
    plain = Document("t")
    plain.table(["task", "x"], [["a", "1"]])
    assert "<script>" not in plain.to_html()
    fig, axes = plot_scheme_scatter(_summaries(139))
    titles = [ax.get_title() for ax in axes.flat if ax.get_title()]
    assert titles == ["parallel: better on 84/139", "parallel: better on 1/2"]
