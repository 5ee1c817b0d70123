"""Shared-input sampling: one permutation for all tasks when they hold the same input tensor."""

from __future__ import annotations

import pytest
import torch

from sharewise.data.sampler import StackedTaskSampler
from sharewise.errors import DataError
from sharewise.tasks.spec import TaskData


def _tasks(shared: bool) -> list[TaskData]:
    x = torch.arange(10.0).view(10, 1, 1).expand(10, 1, 2).contiguous()  # row i holds i
    out = []
    for k in range(3):
        xs = x if shared else x.clone()
        y = torch.arange(10.0).unsqueeze(1) * (k + 1)  # regression target (k+1) * i
        out.append(TaskData(f"t{k}", "regression", 1, xs, y, xs[:0], y[:0], xs, y))
    return out


def test_shared_inputs_feed_the_same_rows_to_every_task_and_keep_the_shapes() -> None:
    sampler = StackedTaskSampler(_tasks(True), 4, torch.Generator().manual_seed(0))
    assert sampler.shared_inputs
    seen = []
    for _ in range(5):  # 20 draws = two epochs of 10 without replacement
        x, y = sampler.next()
        assert x.shape == (3, 4, 1, 2) and y.shape == (3, 4, 1)
        rows = x[0, :, 0, 0]
        assert torch.equal(x[1], x[0]) and torch.equal(x[2], x[0])
        for k in range(3):
            assert torch.equal(y[k, :, 0], rows * (k + 1))
        seen.extend(rows.long().tolist())
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:]) == list(range(10))


def test_distinct_inputs_keep_independent_batches_and_forcing_shared_is_an_error() -> None:
    tasks = _tasks(False)
    sampler = StackedTaskSampler(tasks, 4, torch.Generator().manual_seed(0))
    assert not sampler.shared_inputs
    x, _ = sampler.next()
    assert not (torch.equal(x[0], x[1]) and torch.equal(x[1], x[2]))
    with pytest.raises(DataError, match="the 3 tasks have different training inputs"):
        StackedTaskSampler(tasks, 4, torch.Generator(), shared_inputs=True)


def test_shared_sampler_state_resumes_exactly() -> None:
    a = StackedTaskSampler(_tasks(True), 3, torch.Generator().manual_seed(1))
    a.next()
    state = a.state_dict()
    expected = [a.next() for _ in range(4)]
    b = StackedTaskSampler(_tasks(True), 3, torch.Generator().manual_seed(99))
    b.load_state_dict(state)
    for xe, ye in expected:
        x, y = b.next()
        assert torch.equal(x, xe) and torch.equal(y, ye)
