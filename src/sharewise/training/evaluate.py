"""Per-task loss and headline metrics on a whole split (each task alone, in chunks)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor

from sharewise.data.sampler import stack_inputs, target_rows
from sharewise.data.streaming import DatasetTask, is_streamed, split_batches
from sharewise.model import MultiTaskModel
from sharewise.tasks.losses import MultiTaskLoss
from sharewise.tasks.spec import TaskData
from sharewise.training.metrics import TaskMetrics


def _chunks(task: Any, x: Tensor | None, split: str, batch_size: int, width: int,
            workers: int) -> Iterator[tuple[Tensor, Tensor]]:
    """The task's split in order as ``(x [B, *in], y [B, Y])``: slices of the in-memory ``x``, or
    streamed batches for a DatasetTask."""
    if isinstance(task, DatasetTask):
        yield from split_batches(task, split, batch_size, width, workers)
        return
    y = target_rows(task, task.split(split)[1], width)
    for start in range(0, x.shape[0], batch_size):  # type: ignore[union-attr]
        yield x[start:start + batch_size], y[start:start + batch_size]  # type: ignore[index]


@torch.no_grad()
def evaluate(model: MultiTaskModel, loss_fn: MultiTaskLoss, tasks: Sequence[Any], split: str,
             batch_size: int = 2048, workers: int = 0) -> dict[str, dict[str, Any]]:
    """{task: {"loss", "n", metrics}}: classification ``error`` (and ``auc`` for binary tasks),
    regression ``rmse``, ``mae``, ``r2`` in original units (:mod:`sharewise.training.metrics`).

    ``loss`` is the training objective (on the standardised scale for standardised targets);
    ``n`` counts the labelled rows. Inputs are brought to the training layout (flattened +
    zero-padded when widths differ) so the stacked encoders see what they saw in training.
    Splits without a labelled row for a task are skipped. Streamed tasks
    (:class:`~sharewise.data.streaming.DatasetTask`) are evaluated batch by batch through
    ``workers`` DataLoader workers, never held in memory.
    """
    was_training = model.training
    model.eval()
    width = max(t.target_dim for t in tasks)
    device = next(iter(model.parameters()), torch.empty(0)).device  # splits stay on the CPU; chunks move
    results: dict[str, dict[str, Any]] = {}
    streamed = is_streamed(tasks)
    xs = [None] * len(tasks) if streamed else stack_inputs([t.split(split)[0] for t in tasks])[0]
    for i, task in enumerate(tasks):
        acc = TaskMetrics(task)
        for xb, yb in _chunks(task, xs[i], split, batch_size, width, workers):
            xb, yb = xb.unsqueeze(0), yb.unsqueeze(0)  # [1, B, *in], [1, B, Y]
            if device.type != "cpu":
                xb, yb = xb.to(device), yb.to(device)
            out = model(xb, [i])  # [1, B, O]
            loss, _ = loss_fn(out, yb, [i], count_errors=False)
            acc.update(out[0], yb[0], float(loss[0]))
        res = acc.result()
        if res is not None:
            results[task.name] = res
    model.train(was_training)
    return results
