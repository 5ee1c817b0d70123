"""Regression targets are standardised on the training split; reported metrics are in original
units, so scaling a target by 1000 changes RMSE/MAE by 1000 and leaves every scheme's R^2 alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sharewise.data.tasksets import build_tasks
from sharewise.runner import run
from sharewise.sharing import available_schemes
from tests.data._table_helpers import multi_label_csv


def test_standardised_on_labelled_training_rows_only(tmp_path: Path) -> None:
    opts = {"path": str(multi_label_csv(tmp_path / "t.csv", n=80)), "targets": ["reg"]}
    raw = build_tasks("table", data_dir=None, seed=0, options={**opts, "standardise_targets": False})[0]
    std = build_tasks("table", data_dir=None, seed=0, options=opts)[0]
    y = raw.y_train[raw.labelled("train")]
    torch.testing.assert_close(std.target_mean, y.mean(0, keepdim=False).reshape(1))
    torch.testing.assert_close(std.target_std, y.std(0, unbiased=False).reshape(1))
    torch.testing.assert_close(std.y_test * std.target_std + std.target_mean, raw.y_test, equal_nan=True)


@pytest.mark.slow
def test_scaling_a_target_by_1000_leaves_every_schemes_r2_unchanged(tmp_path: Path) -> None:
    small = multi_label_csv(tmp_path / "a.csv", n=80)
    big = multi_label_csv(tmp_path / "b.csv", n=80, scale=1000.0)
    for scheme in available_schemes():
        results = []
        for path in (small, big):
            cfg = {"name": "t", "scheme": scheme, "seed": 3,
                   "tasks": {"builder": "table", "options": {"path": str(path), "targets": ["reg", "bin", "cls"]}},
                   "model": {"core": {"width": 8, "depth": 2}},
                   "train": {"steps": 12, "eval_every": 6, "batch_size": 16}}
            if scheme == "branched":
                cfg["scheme_options"] = {"tree": [[[0, 1, 2]], [[0, 1], [2]]]}
            results.append(run(cfg, tmp_path / f"{scheme}-{path.stem}")["tasks"]["reg"])
        a, b = results
        assert b["test_r2"] == pytest.approx(a["test_r2"], abs=1e-4), scheme
        assert b["test_rmse"] == pytest.approx(1000 * a["test_rmse"], rel=1e-4), scheme
        assert b["test_mae"] == pytest.approx(1000 * a["test_mae"], rel=1e-4), scheme
