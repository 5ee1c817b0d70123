"""Regression targets standardised on the training split, and mapped back for metrics.

Without it, a summed multi-task loss is dominated by the target with the largest scale: seven
robot-arm targets whose scales differ 20x made every shared scheme lose to single-task training
(issue 14). Standardising each target column to mean 0 / std 1 on the *training* rows (labelled
ones only, so nothing leaks from validation or test) gives every task the same say in the loss; the
metrics (:mod:`sharewise.training.evaluate`) undo it so RMSE and MAE stay in the original units.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from sharewise.errors import DataError
from sharewise.tasks.spec import TaskData


def standardise_targets(task: TaskData) -> TaskData:
    """A copy of a regression ``task`` with ``y_*`` standardised on its labelled training rows.

    A column constant in training keeps std 1 (it has no scale to learn). Classification tasks
    are returned unchanged. Missing labels (NaN) stay NaN.
    """
    if task.kind != "regression":
        return task
    if task.target_std is not None:
        raise DataError(f"task {task.name!r}: its targets are already standardised")
    y = task.y_train  # [N, O]
    valid = ~torch.isnan(y)
    count = valid.sum(0).clamp(min=1)  # [O]
    filled = torch.where(valid, y, torch.zeros_like(y)).double()
    mean = filled.sum(0) / count  # [O]
    var = (torch.where(valid, filled - mean, torch.zeros_like(filled)).pow(2).sum(0) / count)
    std = var.sqrt()
    std = torch.where(std > 0, std, torch.ones_like(std))
    mean, std = mean.float(), std.float()

    def scale(t: Tensor) -> Tensor:
        return ((t.double() - mean.double()) / std.double()).float()

    return dataclasses.replace(task, y_train=scale(task.y_train), y_val=scale(task.y_val),
                               y_test=scale(task.y_test), target_mean=mean, target_std=std,
                               notes={**task.notes, "targets": "standardised on the training split "
                                      f"(mean {[round(v, 6) for v in mean.tolist()]}, std "
                                      f"{[round(v, 6) for v in std.tolist()]}); metrics in original units"})


def original_units(task: TaskData, values: Tensor) -> Tensor:
    """``values [..., n_outputs]`` on the training scale -> the task's original units."""
    if task.target_std is None:
        return values
    return values * task.target_std + task.target_mean
