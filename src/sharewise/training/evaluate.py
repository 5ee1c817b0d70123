"""Per-task loss and headline metrics on a whole split (each task alone, in chunks)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from sharewise.data.sampler import stack_inputs, target_rows
from sharewise.model import MultiTaskModel
from sharewise.tasks.losses import MultiTaskLoss
from sharewise.tasks.spec import TaskData
from sharewise.training.metrics import TaskMetrics


@torch.no_grad()
def evaluate(model: MultiTaskModel, loss_fn: MultiTaskLoss, tasks: Sequence[TaskData], split: str,
             batch_size: int = 2048) -> dict[str, dict[str, Any]]:
    """{task: {"loss", "n", metrics}}: classification ``error`` (and ``auc`` for binary tasks),
    regression ``rmse``, ``mae``, ``r2`` in original units (:mod:`sharewise.training.metrics`).

    ``loss`` is the training objective (on the standardised scale for standardised targets);
    ``n`` counts the labelled rows. Inputs are brought to the training layout (flattened +
    zero-padded when widths differ) so the stacked encoders see what they saw in training.
    Splits without a labelled row for a task are skipped.
    """
    was_training = model.training
    model.eval()
    xs, _ = stack_inputs([t.split(split)[0] for t in tasks])
    width = max(t.target_dim for t in tasks)
    device = next(iter(model.parameters()), torch.empty(0)).device  # splits stay on the CPU; chunks move
    results: dict[str, dict[str, Any]] = {}
    for i, task in enumerate(tasks):
        x, n = xs[i], xs[i].shape[0]
        if n == 0:
            continue
        y = target_rows(task, task.split(split)[1], width)
        acc = TaskMetrics(task)
        for start in range(0, n, batch_size):
            xb, yb = x[start:start + batch_size].unsqueeze(0), y[start:start + batch_size].unsqueeze(0)
            if device.type != "cpu":
                xb, yb = xb.to(device), yb.to(device)
            out = model(xb, [i])  # [1, B, O]
            loss, _ = loss_fn(out, yb, [i])
            acc.update(out[0], yb[0], float(loss[0]))
        res = acc.result()
        if res is not None:
            results[task.name] = res
    model.train(was_training)
    return results
