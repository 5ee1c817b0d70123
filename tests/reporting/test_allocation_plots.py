"""Allocation plots (Figs. 5, 6, 8) from a hand-made Gumbel-Matrix summary and metrics records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sharewise.reporting import allocation_plots as ap
from sharewise.reporting.run_plots import plot_run

# 3 tasks, two layers of 2 and 3 components.
ALLOCATION = {"0": [[1, 0], [1, 1, 0]], "1": [[1, 0], [1, 1, 0]], "2": [[0, 1], [0, 0, 1]]}
SIMILARITY = [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]


def _records() -> list[dict]:
    """Two evaluations; p(t, l, c) = (step / 100) * (t + 1) / 10 + c / 100 (distinct, known)."""
    out = []
    for step in (50, 100):
        scheme = {"temperature": 1.0}
        for t, layers in ALLOCATION.items():
            for l, comps in enumerate(layers):
                for c in range(len(comps)):
                    scheme[f"prob/t{t}/l{l}/c{c}"] = step / 100 * (int(t) + 1) / 10 + c / 100
        out.append({"step": step, "mean_test_error": 0.5, "scheme": scheme})
    out.append({"step": 150, "mean_test_error": 0.4, "scheme": {}})  # no probabilities: skipped
    return out


def test_allocation_image_rows_are_tasks_columns_are_components() -> None:
    image, widths = ap.allocation_image({"1": ALLOCATION["1"], "0": ALLOCATION["0"], "2": ALLOCATION["2"]})
    assert widths == [2, 3]
    np.testing.assert_array_equal(image, [[1, 0, 1, 1, 0], [1, 0, 1, 1, 0], [0, 1, 0, 0, 1]])


def test_allocation_image_rejects_ragged_tasks() -> None:
    with pytest.raises(ValueError, match=r"task 1 has \[2, 2\]"):
        ap.allocation_image({"0": [[1, 0], [1, 1, 0]], "1": [[1, 0], [1, 1]]})


def test_probability_curves_read_every_connection() -> None:
    steps, probs = ap.probability_curves(_records())
    np.testing.assert_array_equal(steps, [50, 100])
    assert probs.shape == (2, 3, 2, 3)  # [S, T, L, C_max]
    assert probs[1, 2, 1, 2] == pytest.approx(1.0 * 3 / 10 + 2 / 100)
    assert probs[0, 0, 0, 1] == pytest.approx(0.5 * 1 / 10 + 1 / 100)
    assert np.isnan(probs[:, :, 0, 2]).all()  # layer 0 has 2 components


def test_plot_images_hold_the_data() -> None:
    fig, ax = ap.plot_allocation(ALLOCATION, ["a", "b", "c"])
    np.testing.assert_array_equal(ax.images[0].get_array(), ap.allocation_image(ALLOCATION)[0])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    fig, ax = ap.plot_task_similarity(SIMILARITY)
    np.testing.assert_array_equal(ax.images[0].get_array(), SIMILARITY)
    fig, axes = ap.plot_allocation_probabilities(_records(), 2, [["x", "y"], ["p", "q", "r"]])
    lines = axes[0, 1].get_lines()
    assert [ln.get_label() for ln in lines] == ["p", "q", "r"]
    np.testing.assert_allclose(lines[2].get_ydata(), [0.5 * 0.3 + 0.02, 0.3 + 0.02])


def test_bad_inputs_name_the_problem() -> None:
    with pytest.raises(ValueError, match=r"got shape \[2, 3\]"):
        ap.plot_task_similarity([[1, 0, 0], [0, 1, 0]])
    with pytest.raises(ValueError, match="got 5"):
        ap.plot_allocation_probabilities(_records(), 5)
    with pytest.raises(ValueError, match="gumbel_matrix run"):
        ap.plot_allocation_probabilities([{"step": 1, "scheme": {}}], 0)


def test_plot_run_writes_the_allocation_figures(tmp_path: Path) -> None:
    summary = {"scheme": "gumbel_matrix", "mean_test_error": 0.4,
               "structure": {"tasks": ["a", "b", "c"], "allocation": ALLOCATION, "task_similarity": SIMILARITY,
                             "components": [["x", "y"], ["p", "q", "r"]],
                             "probabilities": {"0": [[0.9, 0.2], [0.6, 0.7, 0.1]], "1": [[0.8, 0.3], [0.5, 0.7, 0.2]],
                                               "2": [[0.1, 0.9], [0.4, 0.2, 0.9]]}}}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _records()))
    written = {p.name for p in plot_run(tmp_path)}
    expected = {"curves.png", "allocation.png", "task_similarity.png", "probability_similarity.png",
                "allocation_probabilities_t0.png", "allocation_probabilities_t1.png", "allocation_probabilities_t2.png"}
    assert written == expected
    assert all((tmp_path / "plots" / name).stat().st_size > 0 for name in expected)
