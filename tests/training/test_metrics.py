"""Headline metrics equal scikit-learn's, accumulated over chunks, in original units."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score, roc_auc_score

from sharewise.tasks.scaling import standardise_targets
from sharewise.tasks.spec import TaskData
from sharewise.training.metrics import TaskMetrics, roc_auc


def test_auc_equals_sklearn_with_ties() -> None:
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 5, (200,), generator=g).float()  # many ties
    labels = (torch.rand(200, generator=g) < 0.3).float()
    assert roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels.numpy(), scores.numpy()), abs=1e-12)
    assert roc_auc(scores, torch.zeros(200)) is None


def _regression(scale: float) -> TaskData:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(50, 2, generator=g)
    y = (torch.randn(50, 2, generator=g) * torch.tensor([1.0, 20.0]) + 5) * scale
    return TaskData("r", "regression", 2, x[:30], y[:30], x[:0], y[:0], x[30:], y[30:])


@pytest.mark.parametrize("standardise", [False, True])
def test_regression_metrics_equal_sklearn_in_original_units(standardise: bool) -> None:
    raw = _regression(1.0)
    task = standardise_targets(raw) if standardise else raw
    pred_raw = raw.y_test + torch.randn(20, 2, generator=torch.Generator().manual_seed(2))
    pred = (pred_raw - task.target_mean) / task.target_std if standardise else pred_raw  # model's scale
    y = task.y_test.clone()
    y[3, :] = float("nan")  # one unlabelled row
    acc = TaskMetrics(task)
    for s in range(0, 20, 7):  # chunked
        acc.update(pred[s:s + 7], y[s:s + 7], loss=0.0)
    res = acc.result()
    keep = np.arange(20) != 3
    t, p = raw.y_test.numpy()[keep], pred_raw.numpy()[keep]
    assert res["n"] == 19
    assert res["rmse"] == pytest.approx(np.sqrt(mean_squared_error(t, p)), rel=1e-5)
    assert res["mae"] == pytest.approx(mean_absolute_error(t, p), rel=1e-5)
    assert res["r2"] == pytest.approx(r2_score(t, p), rel=1e-5)


def test_r2_accurate_when_mean_dwarfs_spread() -> None:
    x = torch.zeros(6, 1)
    y = torch.tensor([[1e7 + 1], [1e7 + 2], [1e7 + 3], [1e7 + 4], [1e7 + 5], [1e7 + 6]], dtype=torch.float64)
    task = TaskData("r", "regression", 1, x, y.float(), x[:0], y[:0].float(), x, y.float())
    acc = TaskMetrics(task)
    acc.update(y + 0.5, y, loss=0.0)
    assert acc.result()["r2"] == pytest.approx(r2_score(y.numpy(), (y + 0.5).numpy()), rel=1e-6)


def test_classification_error_and_auc_skip_missing_labels() -> None:
    x = torch.zeros(6, 1)
    y = torch.tensor([0, 1, -1, 1, 0, -1])
    task = TaskData("b", "binary", 1, x, y, x[:0], y[:0], x, y)
    out = torch.tensor([[-1.0], [2.0], [5.0], [-0.5], [0.3], [-3.0]])
    acc = TaskMetrics(task)
    acc.update(out, y.float().unsqueeze(1), loss=0.0)
    res = acc.result()
    assert res["n"] == 4 and res["error"] == 0.5  # rows 3 and 4 wrong among the 4 labelled
    assert res["auc"] == pytest.approx(roc_auc_score([0, 1, 1, 0], [-1.0, 2.0, -0.5, 0.3]))
