"""Missing labels are left out of that task's loss and metrics, and nothing else."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from sharewise.data.sampler import target_rows
from sharewise.tasks.losses import MultiTaskLoss
from sharewise.tasks.spec import MISSING_LABEL, TaskData


def _tasks(n: int = 10) -> list[TaskData]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=g)
    out = []
    for name, kind, k in (("m", "multiclass", 4), ("b", "binary", 1), ("r", "regression", 2)):
        y = torch.randn(n, k, generator=g) if kind == "regression" else torch.randint(0, max(k, 2), (n,), generator=g)
        out.append(TaskData(name, kind, k, x, y, x[:0], y[:0], x, y))  # type: ignore[arg-type]
    return out


@pytest.mark.parametrize("which", [0, 1, 2])
def test_loss_with_missing_labels_equals_loss_on_labelled_rows(which: int) -> None:
    tasks = _tasks()
    t = tasks[which]
    missing = torch.arange(10) % 2 == 1
    y = t.y_train.clone()
    y[missing] = float("nan") if t.kind == "regression" else MISSING_LABEL
    holed = dataclasses.replace(t, y_train=y, y_test=y)
    assert int(holed.labelled("train").sum()) == 5
    width_o, width_y = 4, 2
    out = torch.randn(1, 10, width_o, generator=torch.Generator().manual_seed(1))
    loss_fn = MultiTaskLoss([tasks[i] if i != which else holed for i in range(3)])
    loss, err = loss_fn(out, target_rows(holed, holed.y_train, width_y).unsqueeze(0), [which])
    keep = ~missing
    ref_loss, ref_err = loss_fn(out[:, keep], target_rows(t, t.y_train[keep], width_y).unsqueeze(0), [which])
    torch.testing.assert_close(loss, ref_loss)
    torch.testing.assert_close(err, ref_err)
    assert torch.isfinite(loss).all()
    # the gradient reaches only the labelled rows' outputs
    out.requires_grad_(True)
    loss_fn(out, target_rows(holed, holed.y_train, width_y).unsqueeze(0), [which])[0].sum().backward()
    assert out.grad is not None and float(out.grad[0, missing].abs().sum()) == 0.0
    assert float(out.grad[0, keep].abs().sum()) > 0


def test_all_missing_batch_gives_zero_loss() -> None:
    t = _tasks()[0]
    holed = t.y_train.clone()
    holed[::2] = MISSING_LABEL
    loss_fn = MultiTaskLoss([dataclasses.replace(t, y_train=holed)])
    assert loss_fn.masked == [True] and MultiTaskLoss([t]).masked == [False]  # labelled tasks: plain ops
    y = torch.full_like(t.y_train, MISSING_LABEL)
    loss, err = loss_fn(torch.randn(1, 10, 4), y.float().view(1, 10, 1))
    assert float(loss) == 0.0 and float(err) == 0.0


def test_labels_out_of_range_still_rejected() -> None:
    from sharewise.errors import DataError

    x = torch.zeros(4, 2)
    with pytest.raises(DataError, match=r"-1 marks a missing label\), but got labels from -2 to 1"):
        TaskData("t", "multiclass", 3, x, torch.tensor([-2, 0, 1, 1]), x[:0], torch.zeros(0).long(), x, torch.tensor([0, 1, 1, 0]))
    with pytest.raises(DataError, match="every label in the test split is missing"):
        TaskData("t", "binary", 1, x, torch.tensor([0, 1, 1, 0]), x[:0], torch.zeros(0).long(), x, torch.full((4,), -1))


def test_table_task_missing_on_half_the_rows_trains_and_counts_only_labelled_rows(tmp_path: Path) -> None:
    """End to end: training runs, and the evaluated loss/metrics of the holed task equal those of
    the same model on a task made of its labelled rows only."""
    from sharewise.builders import build_model
    from sharewise.config import parse_config
    from sharewise.data.tasksets import build_tasks
    from sharewise.training.evaluate import evaluate
    from sharewise.training.trainer import Trainer
    from tests.data._table_helpers import multi_label_csv

    p = multi_label_csv(tmp_path / "t.csv", n=80)
    opts = {"path": str(p), "targets": ["reg", "bin", "cls"]}
    cfg = parse_config({"name": "t", "scheme": "soft_ordering", "tasks": {"builder": "table", "options": opts},
                        "model": {"core": {"width": 8, "depth": 2}},
                        "train": {"steps": 30, "eval_every": 10, "batch_size": 16}})
    tasks = build_tasks("table", data_dir=None, seed=0, options=opts)
    torch.manual_seed(0)
    model = build_model(cfg, tasks)
    result = Trainer(cfg, model, tasks).fit()
    assert all(torch.isfinite(torch.tensor(r["train_loss"])) for r in result.history)
    reg = tasks[0]
    keep = reg.labelled("test")
    assert 0 < int(keep.sum()) < len(keep)
    full = evaluate(model, Trainer(cfg, model, tasks).loss_fn, tasks, "test")["reg"]
    only = dataclasses.replace(reg, x_test=reg.x_test[keep], y_test=reg.y_test[keep])
    ref = evaluate(model, MultiTaskLoss([only, *tasks[1:]]), [only, *tasks[1:]], "test")["reg"]
    assert full["n"] == ref["n"] == int(keep.sum())
    for key in ("loss", "rmse", "mae", "r2"):
        assert full[key] == pytest.approx(ref[key], rel=1e-5, abs=1e-7)
