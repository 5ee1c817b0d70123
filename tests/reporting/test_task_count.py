"""Error vs number of tasks (Fig. 6a): grouping by (scheme, k), intervals, what is left out or refused."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from sharewise.errors import DataError
from sharewise.reporting.headline import load_runs
from sharewise.reporting.task_count import plot_task_count_curve, task_count_markdown, task_count_table


def _run(root: Path, scheme: str, k: int, seed: int, err: float, steps: int = 5000, **extra: object) -> None:
    d = root / f"k{k}" / scheme / f"seed{seed}"
    d.mkdir(parents=True)
    summary = {"scheme": scheme, "seed": seed, "steps": steps, "mean_test_error": err, "mean_test_loss": 1.0,
               "tasks": {f"alphabet{i}": {"test_error": err} for i in range(k)}, **extra}
    (d / "summary.json").write_text(json.dumps(summary))


def test_groups_by_scheme_and_task_count_with_t_intervals(tmp_path: Path) -> None:
    for seed, err in enumerate([0.20, 0.30, 0.40]):
        _run(tmp_path, "soft_ordering", 50, seed, err)
    _run(tmp_path, "soft_ordering", 5, 0, 0.36)
    _run(tmp_path, "parallel", 5, 0, 0.88)
    table, notes = task_count_table(load_runs(tmp_path))
    assert notes == []
    d = table["soft_ordering"][50]
    # mean 30 %, sample std 10 points, n 3: half-width t_{0.975,2} * 10 / sqrt(3), t_{0.975,2} = 4.302653
    assert d["mean"] == pytest.approx(30.0) and d["ci95"] == pytest.approx(4.302653 * 10 / math.sqrt(3), rel=1e-5)
    assert d["seeds"] == [0, 1, 2] and d["steps"] == 5000
    assert table["soft_ordering"][5]["mean"] == pytest.approx(36.0) and table["soft_ordering"][5]["ci95"] is None
    text = task_count_markdown(table)
    assert "| k | parallel | soft_ordering |" in text
    assert "| 5 | 88.0 (n=1) | 36.0 (n=1) |" in text
    assert f"| 50 | - | 30.0 ± {4.302653 * 10 / math.sqrt(3):.1f} (n=3) |" in text
    _, ax = plot_task_count_curve(table)
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == ["parallel", "soft_ordering"]


def test_extensions_left_out_repeats_refused_and_lengths_kept_apart(tmp_path: Path) -> None:
    _run(tmp_path, "parallel", 10, 0, 0.50)
    _run(tmp_path / "ext", "parallel", 10, 0, 0.30, steps=10000, extended_from={"run_dir": "x", "step": 5000})
    table, notes = task_count_table(load_runs(tmp_path))
    assert table["parallel"][10]["mean"] == pytest.approx(50.0)
    assert len(notes) == 1 and "continued to 10000 steps" in notes[0]
    _run(tmp_path / "again", "parallel", 10, 0, 0.52)
    with pytest.raises(DataError, match="both 'parallel' with k = 10 tasks, seed 0"):
        task_count_table(load_runs(tmp_path))
    _run(tmp_path / "short", "permuted", 10, 0, 0.6, steps=1000)
    _run(tmp_path / "long", "permuted", 10, 1, 0.5, steps=5000)
    permuted = [r for r in load_runs(tmp_path) if r.summary["scheme"] == "permuted"]
    table, _ = task_count_table(permuted)  # load_runs labels the two lengths apart: two curves
    assert table["permuted, 1000 steps"][10]["mean"] == pytest.approx(60.0)
    assert table["permuted, 5000 steps"][10]["mean"] == pytest.approx(50.0)
    for run in permuted:
        run.show_steps = False  # runs gathered without load_runs: one label, two lengths
    with pytest.raises(DataError, match="runs of \\[1000, 5000\\] steps"):
        task_count_table(permuted)
