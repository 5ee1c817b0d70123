"""Per-task losses and errors for a stacked batch of heterogeneous tasks, without a task loop.

Heads emit ``[T', B, O]`` with O the largest output width; targets arrive as ``[T', B, Y]``
(class index in column 0 for classification). Tasks are grouped by kind once, so a step costs
one fused op per kind (at most three), whatever the number of tasks:

- multiclass: softmax cross-entropy over the task's own classes (padding logits masked to -inf);
- binary: sigmoid cross-entropy on logit 0 (the paper's sigmoid heads);
- regression: mean squared error over the task's own target columns (RMSE reported).

Missing labels (class ``-1``, regression ``NaN``; see :class:`~sharewise.tasks.spec.TaskData`)
are masked: a task's loss is the mean over its *labelled* rows of the batch only (0 when the batch
has none), and they count as no error.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sharewise.tasks.spec import MISSING_LABEL, TaskData


class MultiTaskLoss(nn.Module):
    """Computes ``[T']`` losses and error counts for any subset of the tasks."""

    def __init__(self, tasks: Sequence[TaskData]) -> None:
        super().__init__()
        self.kinds = [t.kind for t in tasks]
        self.n_outputs = [t.n_outputs for t in tasks]
        # Tasks that may lack labels take the masked path; fully labelled ones keep the plain ops
        # (masking costs ~30 % of this module's time at UCI sizes). Streamed tasks cannot be
        # checked up front, so they are masked.
        self.masked = [_may_miss(t) for t in tasks]
        width = max(self.n_outputs)
        pad = torch.zeros(len(tasks), width)
        reg_mask = torch.zeros(len(tasks), width)
        for i, t in enumerate(tasks):
            if t.kind == "multiclass":
                pad[i, t.n_outputs:] = float("-inf")
            if t.kind == "regression":
                reg_mask[i, : t.n_outputs] = 1.0
        # Adding the pad is the identity when no multiclass task has fewer classes than O: skipped.
        self._pads = bool(torch.isinf(pad).any())
        self.register_buffer("logit_pad", pad)  # [T, O]
        self.register_buffer("regression_mask", reg_mask)  # [T, O]
        self._groups_cache: dict[tuple[int, ...], dict[str, tuple[Tensor, Tensor]]] = {}

    def _groups(self, tasks: Sequence[int] | None) -> dict[str, tuple[Tensor | None, Tensor]]:
        """kind (``'+masked'`` when a task of the group may miss labels) -> (positions in the
        stacked batch, task indices), cached per task tuple."""
        ids = tuple(range(len(self.kinds))) if tasks is None else tuple(int(t) for t in tasks)
        cached = self._groups_cache.get(ids)
        if cached is None:
            cached = {}
            for kind in ("multiclass", "binary", "regression"):
                pos = [p for p, t in enumerate(ids) if self.kinds[t] == kind]
                if pos:
                    dev = self.logit_pad.device
                    key = kind + ("+masked" if any(self.masked[ids[p]] for p in pos) else "")
                    # None: the group is the whole stacked batch in order (no gather / scatter)
                    every = pos == list(range(len(ids)))
                    cached[key] = (None if every else torch.tensor(pos, device=dev),
                                   torch.tensor([ids[p] for p in pos], device=dev))
            self._groups_cache[ids] = cached
        return cached

    def forward(self, outputs: Tensor, targets: Tensor, tasks: Sequence[int] | None = None, *,
                count_errors: bool = True) -> tuple[Tensor, Tensor | None]:
        """outputs [T', B, O], targets [T', B, Y] -> (mean loss [T'], error count [T']).

        The error count is the number of misclassified samples for classification tasks and the
        sum of squared errors (averaged over target columns) for regression tasks; callers turn it
        into an error rate or an RMSE. ``count_errors=False``: None instead (the training step
        needs only the loss; the counts cost ~5 ops per step).
        """
        n_tasks, batch = outputs.shape[:2]
        loss = outputs.new_zeros(0)  # replaced by the first group's values (sized by _put)
        errors = outputs.new_zeros(0) if count_errors else None
        for kind, (pos, ids) in self._groups(tasks).items():
            out = _rows(outputs, pos)  # [G, B, O]
            tgt = _rows(targets, pos)  # [G, B, Y]
            if kind == "multiclass":
                logits = out + self.logit_pad.index_select(0, ids).unsqueeze(1) if self._pads else out  # [G, B, O]
                labels = tgt[..., 0].long()  # [G, B]
                ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                     reduction="none").view(len(ids), batch)
                loss = _put(loss, pos, ce.mean(1), n_tasks)
                if errors is not None:
                    errors = _put(errors, pos, (logits.argmax(-1) != labels).sum(1).to(loss.dtype), n_tasks)
            elif kind == "multiclass+masked":
                logits = out + self.logit_pad.index_select(0, ids).unsqueeze(1) if self._pads else out  # [G, B, O]
                labels = tgt[..., 0].long()  # [G, B], -1 where missing
                valid = labels >= 0  # [G, B]
                ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                     ignore_index=MISSING_LABEL, reduction="none").view(len(ids), batch)
                loss = _put(loss, pos, ce.sum(1) / valid.sum(1).clamp(min=1), n_tasks)
                if errors is not None:
                    wrong = (logits.argmax(-1) != labels) & valid
                    errors = _put(errors, pos, wrong.sum(1).to(loss.dtype), n_tasks)
            elif kind == "binary":
                logit, label = out[..., 0], tgt[..., 0]  # [G, B]
                bce = F.binary_cross_entropy_with_logits(logit, label, reduction="none")
                loss = _put(loss, pos, bce.mean(1), n_tasks)
                if errors is not None:
                    wrong = (logit > 0).to(label.dtype) != label
                    errors = _put(errors, pos, wrong.sum(1).to(loss.dtype), n_tasks)
            elif kind == "binary+masked":
                logit, label = out[..., 0], tgt[..., 0]  # [G, B], label -1 where missing
                valid = label >= 0
                label = label.clamp(min=0)
                bce = F.binary_cross_entropy_with_logits(logit, label, reduction="none") * valid
                loss = _put(loss, pos, bce.sum(1) / valid.sum(1).clamp(min=1), n_tasks)
                if errors is not None:
                    wrong = ((logit > 0).to(label.dtype) != label) & valid
                    errors = _put(errors, pos, wrong.sum(1).to(loss.dtype), n_tasks)
            elif kind == "regression":
                mask = self.regression_mask.index_select(0, ids).unsqueeze(1)  # [G, 1, O]
                width = tgt.shape[-1]
                diff = (out[..., :width] - tgt) * mask[..., :width]  # [G, B, Y]
                n_cols = mask.sum(-1)  # [G, 1]
                sq = diff.pow(2).sum(-1) / n_cols  # [G, B]
                loss = _put(loss, pos, sq.mean(1), n_tasks)
                if errors is not None:
                    errors = _put(errors, pos, sq.sum(1).detach(), n_tasks)
            else:  # regression+masked
                mask = self.regression_mask.index_select(0, ids).unsqueeze(1)  # [G, 1, O]
                width = tgt.shape[-1]
                valid = ~torch.isnan(tgt) & (mask[..., :width] > 0)  # [G, B, Y], NaN = missing
                diff = (out[..., :width] - torch.where(valid, tgt, 0.0)) * valid  # [G, B, Y]
                n_cols = mask.sum(-1)  # [G, 1]
                sq = diff.pow(2)
                loss = _put(loss, pos, sq.sum((1, 2)) / valid.sum((1, 2)).clamp(min=1), n_tasks)
                if errors is not None:
                    errors = _put(errors, pos, (sq.sum(-1) / n_cols).sum(1).detach(), n_tasks)
        return loss, None if errors is None else errors.detach()


def _rows(x: Tensor, pos: Tensor | None) -> Tensor:
    return x if pos is None else x.index_select(0, pos)


def _put(dst: Tensor, pos: Tensor | None, values: Tensor, n_tasks: int) -> Tensor:
    """``dst [n_tasks]`` (empty: zeros) with rows ``pos`` set to ``values`` (all rows in order:
    ``values`` itself)."""
    if pos is None:
        return values
    if dst.numel() == 0:
        dst = values.new_zeros(n_tasks)
    return dst.index_copy(0, pos, values)


def _may_miss(task: object) -> bool:
    """Whether a task may have missing labels (TaskData: checked; anything else: assumed)."""
    if not isinstance(task, TaskData):
        return True
    return not all(bool(task.labelled(split).all()) for split in ("train", "val", "test"))
