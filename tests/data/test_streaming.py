"""Streamed (Dataset) tasks: the same batches as the in-memory sampler for the same seed, exact
resume with batches prefetched by workers, streamed evaluation; Omniglot read lazily from the zip."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

from sharewise.data.sampler import StackedTaskSampler
from sharewise.data.streaming import DatasetTask, StreamingSampler, split_batches
from sharewise.data.tasksets import build_tasks
from sharewise.tasks.spec import TaskData

OMNI = {"alphabets": ["Gujarati", "Korean"], "image_size": 14}


def _pairs(tasks: list[TaskData]) -> list[DatasetTask]:
    return [DatasetTask(t.name, t.kind, t.n_outputs, TensorDataset(t.x_train, t.y_train),
                        TensorDataset(t.x_val, t.y_val), TensorDataset(t.x_test, t.y_test), t.input_shape)
            for t in tasks]


def _same(a: StackedTaskSampler, b: StackedTaskSampler, steps: int) -> None:
    for _ in range(steps):
        (xa, ya), (xb, yb) = a.next(), b.next()
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_streamed_batches_equal_in_memory_ones_across_epochs() -> None:
    g = torch.Generator().manual_seed(0)
    tasks = [TaskData(n, "multiclass", 3, torch.randn(k, 4, generator=g), torch.randint(0, 3, (k,), generator=g),
                      torch.zeros(0, 4), torch.zeros(0).long(), torch.randn(2, 4), torch.tensor([0, 1]))
             for n, k in (("a", 11), ("b", 7))]
    mem = StackedTaskSampler(tasks, 4, torch.Generator().manual_seed(5))
    stream = StreamingSampler(_pairs(tasks), 4, torch.Generator().manual_seed(5))
    _same(mem, stream, 9)  # 36 draws per task: several epochs of 11 and 7


class _Shared(Dataset):
    """One input, a label row per task (-1 = missing)."""

    def __init__(self, x: torch.Tensor, ys: torch.Tensor) -> None:
        self.x, self.ys = x, ys

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.ys[i]


def test_shared_input_dataset_matches_shared_in_memory_sampler() -> None:
    g = torch.Generator().manual_seed(1)
    x, ys = torch.randn(13, 3, generator=g), torch.randint(-1, 2, (13, 2), generator=g)
    mem = [TaskData(f"t{j}", "binary", 1, x, ys[:, j], x[:0], ys[:0, j], x, ys[:, j].clamp(min=0)) for j in range(2)]
    shared = _Shared(x, ys)
    streamed = [DatasetTask(f"t{j}", "binary", 1, shared, None, shared, (3,), column=j) for j in range(2)]
    a = StackedTaskSampler(mem, 5, torch.Generator().manual_seed(2))
    b = StreamingSampler(streamed, 5, torch.Generator().manual_seed(2))
    assert a.shared_inputs and b.shared_inputs
    _same(a, b, 7)


@pytest.fixture(scope="module")
def omniglot(shared_data: Path) -> tuple[list[TaskData], list[DatasetTask]]:
    mem = build_tasks("omniglot_alphabets", data_dir=str(shared_data), seed=0, options=OMNI)
    lazy = build_tasks("omniglot_alphabets", data_dir=str(shared_data), seed=0, options={**OMNI, "lazy": True})
    return mem, lazy


def test_omniglot_lazy_from_zip_gives_the_in_memory_batches(omniglot: tuple) -> None:
    mem, lazy = omniglot
    assert [t.summary()["n_train"] for t in lazy] == [int(t.x_train.shape[0]) for t in mem]
    a = StackedTaskSampler(mem, 8, torch.Generator().manual_seed(3))
    b = StreamingSampler(lazy, 8, torch.Generator().manual_seed(3), num_workers=2)
    _same(a, b, 6)
    # streamed evaluation reads the test split in order, as the tensors hold it
    xs, ys = zip(*split_batches(lazy[1], "test", 50, 1))
    assert torch.equal(torch.cat(xs), mem[1].x_test) and torch.equal(torch.cat(ys)[:, 0].long(), mem[1].y_test)


def test_resume_with_prefetched_batches_is_exact(omniglot: tuple) -> None:
    _, lazy = omniglot
    ref = StreamingSampler(lazy, 8, torch.Generator().manual_seed(4))
    expected = [ref.next() for _ in range(7)]
    first = StreamingSampler(lazy, 8, torch.Generator().manual_seed(4), num_workers=2, prefetch_factor=3)
    for i in range(3):
        assert torch.equal(first.next()[0], expected[i][0])
    assert len(first._pending) > 0  # workers have drawn batches the loop has not used
    state = first.state_dict()
    first.close()  # "killed"
    second = StreamingSampler(lazy, 8, torch.Generator().manual_seed(99), num_workers=1)
    second.load_state_dict(state)
    for i in range(3, 7):
        x, y = second.next()
        assert torch.equal(x, expected[i][0]) and torch.equal(y, expected[i][1])
