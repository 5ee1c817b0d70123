"""The run summary's decisions, made once: headline metric, mean error, selection score."""

from __future__ import annotations

import pytest

from sharewise.summary import headline, headline_key, mean_error, selection_label, selection_score


def test_headline_is_the_error_only_when_every_run_has_one() -> None:
    cls = {"mean_test_error": 0.1234, "mean_test_loss": 0.5}
    reg = {"mean_test_error": None, "mean_test_loss": 0.25, "mean_test_r2": 0.9}
    assert headline_key([cls, cls]) == "mean_test_error"
    assert headline_key([cls, reg]) == "mean_test_loss"  # compared together: one metric
    assert headline(cls) == "mean test error 12.34 %"
    assert headline(reg) == "mean test loss 0.2500, mean test R² 0.900"


def test_mean_error_ignores_tasks_without_an_error() -> None:
    assert mean_error({"a": {"error": 0.2}, "b": {"rmse": 3.0}, "c": {"error": 0.4}}) == pytest.approx(0.3)
    assert mean_error({"b": {"rmse": 3.0}}) is None


def test_selection_score_and_its_label() -> None:
    rec = {"step": 7, "train_loss": 2.0, "val_loss": 1.5, "mean_val_error": 0.25}
    assert selection_score(rec, "val_loss") == 1.5 and selection_score(rec, "val_error") == 0.25
    assert selection_score(rec, "last") == -7.0  # the latest state scores lowest
    assert selection_score({**rec, "val_loss": None, "mean_val_error": None}, "val_error") == 2.0
    assert selection_label("val_loss", has_val=False) == "training loss (no validation split)"
