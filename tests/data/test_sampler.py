"""StackedTaskSampler: epochs without replacement per task, seeded, exactly resumable."""

from __future__ import annotations

import pytest
import torch

from sharewise.data.sampler import StackedTaskSampler, stack_inputs
from sharewise.tasks.spec import TaskData


def task(name: str, n: int, width: int, kind: str = "multiclass", n_outputs: int = 3) -> TaskData:
    """Inputs carry their own row id in column 0 (and the width in column 1), so batches can be traced."""
    x = torch.zeros(n, width)
    x[:, 0] = torch.arange(n, dtype=torch.float32)
    x[:, 1] = float(width)
    if kind == "regression":
        y = torch.arange(n * n_outputs, dtype=torch.float32).view(n, n_outputs)
    else:
        y = torch.arange(n) % (2 if kind == "binary" else n_outputs)
    return TaskData(name, kind, n_outputs, x, y, x[:1], y[:1], x[:1], y[:1])  # type: ignore[arg-type]


TASKS = [task("a", 12, 4), task("b", 20, 6, "regression", 2), task("c", 7, 3, "binary", 1), task("d", 3, 5)]


def drawn_ids(sampler: StackedTaskSampler, steps: int) -> list[list[int]]:
    """Row ids each task drew over ``steps`` batches, in order."""
    ids: list[list[int]] = [[] for _ in sampler.sizes]
    for _ in range(steps):
        x, _ = sampler.next()
        for t in range(len(ids)):
            ids[t] += x[t, :, 0].long().tolist()
    return ids


def test_shapes_padding_and_targets() -> None:
    sampler = StackedTaskSampler(TASKS, 4, torch.Generator().manual_seed(0))
    x, y = sampler.next()
    assert x.shape == (4, 4, 6) and y.shape == (4, 4, 2)  # widest input 6, widest target 2
    for t, tk in enumerate(TASKS):
        width = tk.x_train.shape[1]
        assert (x[t, :, 1] == width).all()
        assert torch.equal(x[t, :, width:], torch.zeros(4, 6 - width))  # zero padding
        rows = x[t, :, 0].long()
        if tk.kind == "regression":
            assert torch.equal(y[t], tk.y_train[rows])
        else:
            assert torch.equal(y[t, :, 0], tk.y_train[rows].float())
            assert torch.equal(y[t, :, 1], torch.zeros(4))


def test_same_shaped_images_are_not_flattened() -> None:
    xs, shape = stack_inputs([torch.zeros(2, 1, 4, 4), torch.zeros(3, 1, 4, 4)])
    assert shape == (1, 4, 4) and xs[0].shape == (2, 1, 4, 4)
    xs, shape = stack_inputs([torch.zeros(2, 1, 4, 4), torch.zeros(3, 10)])
    assert shape == (16,) and xs[1].shape == (3, 16)


@pytest.mark.parametrize("batch", [4, 5, 8])
def test_each_epoch_covers_each_training_set_without_replacement(batch: int) -> None:
    # Task d (3 samples) is smaller than every batch; task a (12) divides by 4 but not by 5 or 8.
    sampler = StackedTaskSampler(TASKS, batch, torch.Generator().manual_seed(1))
    ids = drawn_ids(sampler, 15)
    for t, tk in enumerate(TASKS):
        n = tk.x_train.shape[0]
        seq = ids[t]
        assert len(seq) == 15 * batch
        epochs = [seq[i:i + n] for i in range(0, len(seq) - n + 1, n)]
        assert len(epochs) >= 2
        for epoch in epochs:
            assert sorted(epoch) == list(range(n)), f"task {tk.name}: {epoch}"
    # Epochs are reshuffled, not repeated.
    a = ids[0]
    assert any(a[i:i + 12] != a[:12] for i in range(12, len(a) - 11, 12))


def test_deterministic_for_a_seed() -> None:
    a = drawn_ids(StackedTaskSampler(TASKS, 5, torch.Generator().manual_seed(7)), 9)
    b = drawn_ids(StackedTaskSampler(TASKS, 5, torch.Generator().manual_seed(7)), 9)
    c = drawn_ids(StackedTaskSampler(TASKS, 5, torch.Generator().manual_seed(8)), 9)
    assert a == b and a != c


@pytest.mark.parametrize("warmup", [0, 3, 4])
def test_state_dict_resumes_the_identical_sequence(warmup: int) -> None:
    sampler = StackedTaskSampler(TASKS, 5, torch.Generator().manual_seed(3))
    drawn_ids(sampler, warmup)
    state = sampler.state_dict()
    expected = [sampler.next() for _ in range(10)]
    resumed = StackedTaskSampler(TASKS, 5, torch.Generator().manual_seed(99))
    resumed.load_state_dict(state)
    for x, y in expected:
        x2, y2 = resumed.next()
        assert torch.equal(x, x2) and torch.equal(y, y2)
    # The saved state is a snapshot: drawing more did not change it.
    again = StackedTaskSampler(TASKS, 5, torch.Generator().manual_seed(0))
    again.load_state_dict(state)
    assert torch.equal(again.next()[0], expected[0][0])


def test_a_task_smaller_than_the_batch() -> None:
    small = [task("tiny", 2, 3), task("big", 9, 3)]
    sampler = StackedTaskSampler(small, 6, torch.Generator().manual_seed(0))
    x, y = sampler.next()
    assert x.shape == (2, 6, 3)
    tiny = x[0, :, 0].long().tolist()
    assert [sorted(tiny[i:i + 2]) for i in range(0, 6, 2)] == [[0, 1]] * 3


def test_target_rows_of_an_empty_split() -> None:
    """An empty split (a small table's val split) gives [0, width] rows, not a reshape error."""
    from sharewise.data.sampler import target_rows

    assert target_rows(None, torch.zeros(0, dtype=torch.long), 3).shape == (0, 3)  # type: ignore[arg-type]
    assert target_rows(None, torch.zeros(0, 2), 3).shape == (0, 3)  # type: ignore[arg-type]
    assert target_rows(None, torch.tensor([2, 0]), 2).tolist() == [[2.0, 0.0], [0.0, 0.0]]  # type: ignore[arg-type]
