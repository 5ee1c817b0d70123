"""Per-task optimiser state (issue 10): an update of some tasks leaves every other task's slice of
a stacked parameter, and its optimiser state, bit-identical, and moves a task's own slice exactly
as a separate parameter under ``torch.optim`` would (its own step count and bias correction)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from sharewise.runner import prepare
from sharewise.components.usage import ParameterUse
from sharewise.training.task_optim import _BUFFERS, PerTaskOptimizer, TaskSlicedOptimizer
from sharewise.training.trainer import Trainer

T = 3
# Mixed updates: alternating (one task), joint (all), and subsets (contiguous and not).
SCHEDULE: list[list[int] | None] = [[1], [0], None, [2], [0, 2], [1, 2], None, [2], [1], [0, 1, 2]]


def _reference(kind: str, p: torch.Tensor, wd: float) -> torch.optim.Optimizer:
    if kind == "adam":
        return torch.optim.Adam([p], lr=0.01, weight_decay=wd, fused=True)
    if kind == "sgd":
        return torch.optim.SGD([p], lr=0.01, momentum=0.9, weight_decay=wd)
    return torch.optim.RMSprop([p], lr=0.01, weight_decay=wd)


@pytest.mark.parametrize("kind", ["adam", "sgd", "rmsprop"])
def test_each_slice_moves_exactly_as_a_separate_parameter(kind: str) -> None:
    gen = torch.Generator().manual_seed(0)
    stacked = torch.nn.Parameter(torch.randn(T, 5, 7, generator=gen))
    separate = [torch.nn.Parameter(stacked.detach()[t].clone()) for t in range(T)]
    opt = PerTaskOptimizer([{"params": [stacked], "lr": 0.01, "weight_decay": 0.1}], kind, T)
    refs = [_reference(kind, p, 0.1) for p in separate]
    for tasks in SCHEDULE:
        grad = torch.randn(T, 5, 7, generator=gen)
        ids = range(T) if tasks is None else tasks
        others = [t for t in range(T) if t not in ids]
        before = {t: stacked.detach()[t].clone() for t in others}
        stacked.grad = grad.clone()  # every slice gets a gradient; only the updated ones may use it
        opt.step(tasks)
        for t in ids:
            separate[t].grad = grad[t].clone()
            refs[t].step()
        for t in others:
            assert torch.equal(stacked.detach()[t], before[t]), (tasks, t)
        for t in range(T):
            assert torch.equal(stacked.detach()[t], separate[t].detach()), (kind, tasks, t)
    counts = [sum(1 for s in SCHEDULE if s is None or t in s) for t in range(T)]
    assert opt.state[stacked]["step"].tolist() == counts


@pytest.mark.parametrize("kind", ["adam", "sgd", "rmsprop"])
def test_blocks_along_any_axis_move_exactly_as_separate_parameters(kind: str) -> None:
    """Blocks owned along a later axis (a DenseLayerBank's layers: ``[in, L, out]``, strided
    views) and whole tensors owned by one task move as separate parameters; blocks of other
    tasks and their state stay bit-identical."""
    gen = torch.Generator().manual_seed(1)
    bank = torch.nn.Parameter(torch.randn(5, 2 * T, 4, generator=gen))  # layers 2t, 2t+1 are task t's
    whole = torch.nn.Parameter(torch.randn(3, generator=gen))  # task 1's alone
    owners = {id(bank): ParameterUse(bank, torch.arange(T).unsqueeze(1) == torch.arange(2 * T).unsqueeze(0) // 2, 1),
              id(whole): ParameterUse(whole, torch.tensor([[False], [True], [False]]))}
    opt = PerTaskOptimizer([{"params": [bank, whole], "lr": 0.01, "weight_decay": 0.1}], kind, T, owners=owners)
    separate = [torch.nn.Parameter(bank.detach()[:, 2 * t:2 * t + 2].clone()) for t in range(T)]
    alone = torch.nn.Parameter(whole.detach().clone())
    refs = [_reference(kind, p, 0.1) for p in [*separate, alone]]
    for tasks in SCHEDULE:
        grads = torch.randn(5, 2 * T, 4, generator=gen), torch.randn(3, generator=gen)
        bank.grad, whole.grad = grads[0].clone(), grads[1].clone()
        ids = range(T) if tasks is None else tasks
        others = [t for t in range(T) if t not in ids]
        buffer = _BUFFERS[kind][0]
        before = {t: opt.state[bank][buffer][:, 2 * t:2 * t + 2].clone() for t in others} if opt.state else {}
        opt.step(tasks)
        for t in ids:
            separate[t].grad = grads[0][:, 2 * t:2 * t + 2].clone()
            refs[t].step()
        if 1 in ids:
            alone.grad = grads[1].clone()
            refs[T].step()
        for t in range(T):
            assert torch.equal(bank.detach()[:, 2 * t:2 * t + 2], separate[t].detach()), (kind, tasks, t)
        for t, buf in before.items():
            assert torch.equal(opt.state[bank][buffer][:, 2 * t:2 * t + 2], buf), (kind, tasks, t)
        assert torch.equal(whole.detach(), alone.detach()), (kind, tasks)
    counts = [sum(1 for s in SCHEDULE if s is None or t in s) for t in range(T)]
    assert opt.state[bank]["step"].tolist() == [c for c in counts for _ in range(2)]
    assert opt.state[whole]["step"].tolist() == [counts[1]]


def test_parameters_need_the_task_axis_first() -> None:
    with pytest.raises(ValueError, match=r"task axis first \(\[3, \.\.\.\]\), got shape \[4, 2\]"):
        PerTaskOptimizer([torch.nn.Parameter(torch.zeros(4, 2))], "adam", 3)


def test_state_dict_round_trip_continues_identically() -> None:
    torch.manual_seed(0)
    shared, stacked = torch.nn.Parameter(torch.randn(4)), torch.nn.Parameter(torch.randn(T, 4))
    groups = [{"name": "weights", "params": [shared, stacked], "lr": 0.01, "weight_decay": 0.0}]
    a = TaskSlicedOptimizer(groups, "adam", T, 0.01, {id(stacked)})
    for tasks in ([0], [2], None):
        shared.grad, stacked.grad = torch.randn(4), torch.randn(T, 4)
        a.step(tasks)
    state = copy.deepcopy(a.state_dict())
    params = [shared.detach().clone(), stacked.detach().clone()]
    b_shared, b_stacked = torch.nn.Parameter(params[0].clone()), torch.nn.Parameter(params[1].clone())
    b = TaskSlicedOptimizer([{"name": "weights", "params": [b_shared, b_stacked], "lr": 0.01, "weight_decay": 0.0}],
                            "adam", T, 0.01, {id(b_stacked)})
    b.load_state_dict(state)
    for tasks in ([1], [1], None, [0]):
        g1, g2 = torch.randn(4), torch.randn(T, 4)
        shared.grad, stacked.grad, b_shared.grad, b_stacked.grad = g1, g2, g1.clone(), g2.clone()
        a.step(tasks)
        b.step(tasks)
    assert torch.equal(shared, b_shared) and torch.equal(stacked, b_stacked)
    assert b.per_task is not None and b.per_task.state[b_stacked]["step"].tolist() == [4.0, 4.0, 3.0]


def _gumbel_config(**train: Any) -> dict[str, Any]:
    return {
        "name": "alternating",
        "scheme": "gumbel_matrix",
        "scheme_options": {"n_components": 3, "budget": 0.5},
        "tasks": {"builder": "demo", "options": {"names": ["iris", "wine", "friedman1"]}},
        "model": {"core": {"width": 8, "depth": 2, "dropout": 0.0}},
        "train": {"steps": 5, "batch_size": 8, "mode": "alternating", "threads": 1, "weight_decay": 0.01, **train},
    }


def _optimizer_state(trainer: Trainer) -> dict[int, dict[str, torch.Tensor]]:
    opt = trainer.optimizer.per_task
    return {id(p): {k: v.clone() for k, v in opt.state[p].items()} for g in opt.param_groups for p in g["params"]}


def test_an_alternating_update_leaves_other_tasks_bit_identical() -> None:
    cfg, tasks, model = prepare(_gumbel_config(), None)
    trainer = Trainer(cfg, model, tasks)
    for step in range(1, 4):  # warm up: every task has momentum and second moments
        trainer.train_step(step)
    per_task = model.task_parameters()
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in per_task} >= {"encoders.weight", "encoders.bias", "heads.heads.weight",
                                               "heads.heads.bias", "scheme.logits.0", "scheme.logits.1"}
    shared = {n: p.detach().clone() for n, p in model.named_parameters() if id(p) not in {id(q) for q in per_task}}
    assert shared
    x, y = trainer.sampler.next()
    for t in range(len(tasks)):
        before = {id(p): p.detach().clone() for p in per_task}
        state_before = _optimizer_state(trainer)
        shared_before = {n: p.detach().clone() for n, p in model.named_parameters() if n in shared}
        trainer._update(x[t:t + 1], y[t:t + 1], [t], step=4)
        state_after = _optimizer_state(trainer)
        for p in per_task:
            for u in range(len(tasks)):
                moved = not torch.equal(p.detach()[u], before[id(p)][u])
                state_moved = any(not torch.equal(state_after[id(p)][k][u], state_before[id(p)][k][u])
                                  for k in state_before[id(p)])
                if u != t:
                    assert not moved and not state_moved, (names[id(p)], t, u)
                else:
                    assert state_moved, (names[id(p)], t)
        assert any(not torch.equal(p.detach(), shared_before[n]) for n, p in model.named_parameters() if n in shared)
