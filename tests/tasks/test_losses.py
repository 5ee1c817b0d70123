"""MultiTaskLoss: one fused op per task kind equals each task's own torch loss, for any task subset."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from sharewise.data.sampler import target_rows
from sharewise.tasks.losses import MultiTaskLoss
from sharewise.tasks.spec import TaskData

BATCH = 8


def task(name: str, kind: str, n_outputs: int, n: int = BATCH, seed: int = 0) -> TaskData:
    gen = torch.Generator().manual_seed(seed)
    if kind == "regression":
        y = torch.randn(n, n_outputs, generator=gen)
    else:
        y = torch.randint(0, 2 if kind == "binary" else n_outputs, (n,), generator=gen)
    x = torch.randn(n, 3, generator=gen)
    return TaskData(name, kind, n_outputs, x, y, x[:0], y[:0], x, y)  # type: ignore[arg-type]


def stacked(tasks: list[TaskData], ids: list[int], seed: int = 1) -> tuple[Tensor, Tensor]:
    """Random head outputs [T', B, O] and the stacked targets [T', B, Y] for tasks ``ids``."""
    width_o = max(t.n_outputs for t in tasks)
    width_y = max(t.target_dim for t in tasks)
    gen = torch.Generator().manual_seed(seed)
    out = torch.randn(len(ids), BATCH, width_o, generator=gen) * 2
    tgt = torch.stack([target_rows(tasks[t], tasks[t].y_train, width_y) for t in ids])
    return out, tgt


def reference(t: TaskData, out: Tensor) -> tuple[Tensor, Tensor]:
    """The task's own loss and error count, on its own output columns only."""
    y = t.y_train
    if t.kind == "multiclass":
        logits = out[:, : t.n_outputs]
        return F.cross_entropy(logits, y), (logits.argmax(1) != y).sum().float()
    if t.kind == "binary":
        return (F.binary_cross_entropy_with_logits(out[:, 0], y.float()),
                ((out[:, 0] > 0).long() != y).sum().float())
    pred = out[:, : t.n_outputs]
    per_sample = ((pred - y) ** 2).mean(1)  # [B]
    return F.mse_loss(pred, y), per_sample.sum()


MIXED = [task("a", "multiclass", 3, seed=1), task("b", "binary", 1, seed=2),
         task("c", "regression", 2, seed=3), task("d", "multiclass", 5, seed=4),
         task("e", "regression", 4, seed=5), task("f", "binary", 1, seed=6)]


@pytest.mark.parametrize("ids", [None, [2, 0], [5], [4, 3, 1, 0], [0, 0]])
def test_mixed_kinds_in_one_stacked_batch_equal_per_task_references(ids: list[int] | None) -> None:
    fn = MultiTaskLoss(MIXED)
    order = ids if ids is not None else list(range(len(MIXED)))
    out, tgt = stacked(MIXED, order)
    out.requires_grad_()
    loss, errors = fn(out, tgt, ids)
    assert loss.shape == errors.shape == (len(order),)
    assert not errors.requires_grad
    refs = [reference(MIXED[t], out[i]) for i, t in enumerate(order)]
    torch.testing.assert_close(loss, torch.stack([r[0] for r in refs]))
    torch.testing.assert_close(errors, torch.stack([r[1] for r in refs]).detach())
    # The training step's call (no error counts) gives the same loss, bit for bit.
    loss_only, no_errors = fn(out, tgt, ids, count_errors=False)
    assert no_errors is None and torch.equal(loss_only, loss)
    # Gradients equal the references', and the padding outputs of every task get none.
    (g,) = torch.autograd.grad(loss.sum(), out)
    (g_ref,) = torch.autograd.grad(sum(r[0] for r in refs), out)
    torch.testing.assert_close(g, g_ref)
    for i, t in enumerate(order):
        used = 1 if MIXED[t].kind == "binary" else MIXED[t].n_outputs
        assert torch.equal(g[i, :, used:], torch.zeros_like(g[i, :, used:]))


def test_multiclass_padding_logits_are_masked_even_when_largest() -> None:
    tasks = [task("three", "multiclass", 3, seed=1), task("five", "multiclass", 5, seed=2)]
    fn = MultiTaskLoss(tasks)
    out, tgt = stacked(tasks, [0, 1])
    out[0, :, 3:] = 100.0  # padding logits of the 3-class task would win an unmasked argmax
    loss, errors = fn(out, tgt)
    torch.testing.assert_close(loss[0], F.cross_entropy(out[0, :, :3], tasks[0].y_train))
    assert errors[0] == (out[0, :, :3].argmax(1) != tasks[0].y_train).sum()
    torch.testing.assert_close(loss[1], F.cross_entropy(out[1], tasks[1].y_train))


def test_error_counts_hand_computed() -> None:
    tasks = [task("m", "multiclass", 3, n=4), task("b", "binary", 1, n=4), task("r", "regression", 2, n=4)]
    tasks[0].y_train = torch.tensor([0, 1, 2, 2])
    tasks[1].y_train = torch.tensor([1, 0, 1, 0])
    tasks[2].y_train = torch.tensor([[1.0, 0.0], [0.0, 0.0], [2.0, 2.0], [0.0, 1.0]])
    fn = MultiTaskLoss(tasks)
    out = torch.zeros(3, 4, 3)
    out[0] = torch.tensor([[5.0, 0, 0], [5, 0, 0], [0, 0, 5], [0, 5, 0]])  # right, wrong, right, wrong
    out[1, :, 0] = torch.tensor([2.0, 1.0, -1.0, -3.0])  # right, wrong, wrong, right
    out[2, :, :2] = torch.tensor([[1.0, 0.0], [1.0, 1.0], [2.0, 0.0], [0.0, 1.0]])
    tgt = torch.stack([target_rows(t, t.y_train, 2) for t in tasks])
    _, errors = fn(out, tgt)
    # Regression: per-sample mean over 2 columns of squared errors: 0, 1, 2, 0 -> sum 3.
    assert errors.tolist() == [2.0, 2.0, 3.0]


def test_binary_loss_equals_bce_by_hand() -> None:
    t = task("b", "binary", 1, n=BATCH, seed=9)
    fn = MultiTaskLoss([t])
    out, tgt = stacked([t], [0])
    p = torch.sigmoid(out[0, :, 0])
    y = t.y_train.float()
    by_hand = -(y * p.log() + (1 - y) * (1 - p).log()).mean()
    torch.testing.assert_close(fn(out, tgt)[0][0], by_hand)


def test_regression_with_different_widths_averages_each_tasks_own_columns() -> None:
    tasks = [task("r1", "regression", 1, seed=1), task("r3", "regression", 3, seed=2)]
    fn = MultiTaskLoss(tasks)
    out, tgt = stacked(tasks, [0, 1])
    assert tgt.shape == (2, BATCH, 3) and torch.equal(tgt[0, :, 1:], torch.zeros(BATCH, 2))
    loss, errors = fn(out, tgt)
    torch.testing.assert_close(loss[0], F.mse_loss(out[0, :, :1], tasks[0].y_train))
    torch.testing.assert_close(loss[1], F.mse_loss(out[1], tasks[1].y_train))
    torch.testing.assert_close(errors[1], ((out[1] - tasks[1].y_train) ** 2).mean(1).sum())


def test_groups_covering_the_whole_batch_skip_the_gather_and_agree_with_subsets() -> None:
    """All tasks of one kind in order take the no-copy path; any order / subset gives the same
    per-task losses as the full batch."""
    from sharewise.tasks.losses import MultiTaskLoss
    from sharewise.tasks.spec import TaskData

    torch.manual_seed(0)
    x = torch.zeros(2, 3)
    kinds = [("binary", 1), ("multiclass", 4), ("binary", 1), ("regression", 2)]
    tasks = [TaskData(f"t{i}", k, c, x, torch.zeros(2, dtype=torch.long) if k != "regression" else torch.zeros(2, c),
                      x, torch.zeros(2, dtype=torch.long) if k != "regression" else torch.zeros(2, c),
                      x, torch.zeros(2, dtype=torch.long) if k != "regression" else torch.zeros(2, c))
             for i, (k, c) in enumerate(kinds)]
    loss_fn = MultiTaskLoss(tasks)
    out = torch.randn(4, 8, 4)
    y = torch.stack([torch.randint(0, 2, (8, 2)).float(), torch.randint(0, 4, (8, 2)).float(),
                     torch.randint(0, 2, (8, 2)).float(), torch.randn(8, 2)])
    full, full_err = loss_fn(out, y)
    assert loss_fn._groups([0, 2])["binary"][0] is None  # whole batch, in order: no index
    for ids in ([0, 2], [2, 0], [1], [3, 1, 0]):
        part, err = loss_fn(out[ids], y[ids], ids)
        torch.testing.assert_close(part, full[ids])
        torch.testing.assert_close(err, full_err[ids])
