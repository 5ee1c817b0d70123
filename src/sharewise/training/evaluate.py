"""Per-task loss and error on a whole split (each task alone, in chunks)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from sharewise.data.sampler import stack_inputs, target_rows
from sharewise.model import MultiTaskModel
from sharewise.tasks.losses import MultiTaskLoss
from sharewise.tasks.spec import TaskData


@torch.no_grad()
def evaluate(model: MultiTaskModel, loss_fn: MultiTaskLoss, tasks: Sequence[TaskData], split: str,
             batch_size: int = 2048) -> dict[str, dict[str, float]]:
    """{task: {"loss", "error"}} (error: misclassification rate; regression: "rmse" instead).

    Inputs are brought to the training layout (flattened + zero-padded when widths differ) so
    the stacked encoders see what they saw in training. Empty splits are skipped.
    """
    was_training = model.training
    model.eval()
    xs, _ = stack_inputs([t.split(split)[0] for t in tasks])
    width = max(t.target_dim for t in tasks)
    device = next(iter(model.parameters()), torch.empty(0)).device  # splits stay on the CPU; chunks move
    results: dict[str, dict[str, float]] = {}
    for i, task in enumerate(tasks):
        x, n = xs[i], xs[i].shape[0]
        if n == 0:
            continue
        y = target_rows(task, task.split(split)[1], width)
        loss_sum = err_sum = 0.0
        for start in range(0, n, batch_size):
            xb, yb = x[start:start + batch_size].unsqueeze(0), y[start:start + batch_size].unsqueeze(0)
            if device.type != "cpu":
                xb, yb = xb.to(device), yb.to(device)
            out = model(xb, [i])
            loss, err = loss_fn(out, yb, [i])
            loss_sum += float(loss[0]) * xb.shape[1]
            err_sum += float(err[0])
        res = {"loss": loss_sum / n}
        if task.kind == "regression":
            res["rmse"] = (err_sum / n) ** 0.5
        else:
            res["error"] = err_sum / n
        results[task.name] = res
    model.train(was_training)
    return results
