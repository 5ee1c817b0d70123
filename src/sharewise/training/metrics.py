"""Headline metrics users expect, accumulated chunk by chunk (so evaluation can stream).

Regression: RMSE, MAE and R^2 (coefficient of determination, ``1 - SSE / SST`` per target column,
averaged over columns as scikit-learn's ``r2_score`` does), RMSE and MAE in the task's *original*
units (errors on the standardised scale times ``target_std``; R^2 is unchanged by that map).
Classification: error rate; binary tasks also ROC AUC (Mann-Whitney U with tied scores counted
half, equal to ``sklearn.metrics.roc_auc_score``). Rows whose label is missing are not counted.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from sharewise.tasks.spec import TaskData


def roc_auc(scores: Tensor, labels: Tensor) -> float | None:
    """Area under the ROC curve of ``scores [N]`` for 0/1 ``labels [N]``; None with one class."""
    pos = labels > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    from scipy.stats import rankdata

    ranks = torch.from_numpy(rankdata(scores.double().numpy()))  # average ranks for ties
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


class TaskMetrics:
    """Accumulates one task's loss and headline metrics over chunks of one split."""

    def __init__(self, task: TaskData) -> None:
        self.task = task
        self.n = 0  # labelled rows
        self.loss_sum = 0.0
        self.wrong = 0.0
        self.scores: list[Tensor] = []
        self.labels: list[Tensor] = []
        o = task.n_outputs
        # per target column, on the training scale (float64); result() maps them to original units
        self.shift: Tensor | None = None
        self.count = torch.zeros(o, dtype=torch.float64)
        self.sum_y = torch.zeros(o, dtype=torch.float64)
        self.sum_y2 = torch.zeros(o, dtype=torch.float64)
        self.sse = torch.zeros(o, dtype=torch.float64)
        self.sae = torch.zeros(o, dtype=torch.float64)

    def update(self, out: Tensor, y: Tensor, loss: float) -> None:
        """``out [B, O]`` (the task's head outputs), ``y [B, Y]`` target rows, ``loss`` the chunk's
        mean loss over its labelled rows."""
        task = self.task
        if task.kind == "regression":
            k = task.n_outputs
            target = y[:, :k].double().cpu()
            valid = ~torch.isnan(target)  # [B, k]
            n_rows = int(valid.any(1).sum())
            target = torch.where(valid, target, 0.0)
            if self.shift is None:  # sums of (y - shift) keep SST accurate when |mean| >> std
                self.shift = target.sum(0) / valid.sum(0).clamp(min=1)
            centred = torch.where(valid, target - self.shift, 0.0)
            diff = torch.where(valid, out[:, :k].double().cpu() - target, 0.0)
            self.count += valid.sum(0)
            self.sum_y += centred.sum(0)
            self.sum_y2 += centred.pow(2).sum(0)
            self.sse += diff.pow(2).sum(0)
            self.sae += diff.abs().sum(0)
        else:
            label = y[:, 0]
            valid = label >= 0
            n_rows = int(valid.sum())
            if task.kind == "binary":
                logit = out[valid, 0].float().cpu()
                self.wrong += float(((logit > 0).float() != label[valid]).sum())
                self.scores.append(logit)
                self.labels.append(label[valid].cpu())
            else:
                pred = out[:, : task.n_outputs].argmax(-1)
                self.wrong += float(((pred != label.long()) & valid).sum())
        self.n += n_rows
        self.loss_sum += loss * n_rows

    def result(self) -> dict[str, Any] | None:
        """``{"loss", "n", ...}`` or None when the split has no labelled row for this task."""
        if self.n == 0:
            return None
        res: dict[str, Any] = {"loss": self.loss_sum / self.n, "n": self.n}
        if self.task.kind == "regression":
            count = self.count.clamp(min=1)
            std = (self.task.target_std.double() if self.task.target_std is not None
                   else torch.ones_like(self.sse))  # [O]: errors scale by std, shifts cancel
            res["rmse"] = math.sqrt(float((self.sse * std.pow(2)).sum() / count.sum()))
            res["mae"] = float((self.sae * std).sum() / count.sum())
            sst = self.sum_y2 - self.sum_y.pow(2) / count  # [O], scale-free ratio below
            ok = sst > 0
            res["r2"] = float((1 - self.sse[ok] / sst[ok]).mean()) if bool(ok.any()) else None
            return res
        res["error"] = self.wrong / self.n
        if self.task.kind == "binary":
            res["auc"] = roc_auc(torch.cat(self.scores), torch.cat(self.labels))
        return res
