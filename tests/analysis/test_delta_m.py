"""Delta_m, paper Eq. 1, on hand-computed examples."""

import pytest

from sharewise.analysis import delta_m, delta_m_per_task
from sharewise.errors import ConfigError


def test_both_directions_by_hand():
    model = {"seg": 66.0, "depth": 2.4}
    base = {"seg": 60.0, "depth": 2.0}
    lower = {"seg": False, "depth": True}
    # seg: +6/60 = +0.10 (higher is better); depth: -(0.4/2.0) = -0.20 (lower is better)
    assert delta_m_per_task(model, base, lower) == pytest.approx({"seg": 0.10, "depth": -0.20})
    assert delta_m(model, base, lower) == pytest.approx(-0.05)


def test_paper_table1_ours_3_row():
    # Cityscapes: single task S 65.17 mIoU, I 11.70 px, D 2.57 px; Ours-3: 64.11, 11.62, 2.62
    value = delta_m({"S": 64.11, "I": 11.62, "D": 2.62}, {"S": 65.17, "I": 11.70, "D": 2.57},
                    {"S": False, "I": True, "D": True})
    assert value == pytest.approx(-0.0100, abs=5e-4)  # paper: -1.00 %


def test_identical_metrics_give_zero():
    assert delta_m({"a": 3.0}, {"a": 3.0}, {"a": True}) == 0.0


def test_mismatched_tasks_are_named():
    with pytest.raises(ConfigError, match=r"tasks \['depth'\] are missing from it and tasks \['edges'\]"):
        delta_m({"seg": 1.0, "depth": 1.0}, {"seg": 1.0, "edges": 1.0}, {"seg": False, "depth": True})


def test_zero_baseline_is_rejected():
    with pytest.raises(ConfigError, match="task 'seg' has baseline metric 0"):
        delta_m({"seg": 1.0}, {"seg": 0.0}, {"seg": False})
