"""Tasks larger than memory: splits as ``torch.utils.data.Dataset``s, streamed through DataLoader workers.

A :class:`DatasetTask` is a task whose splits are map-style datasets instead of tensors. Either
each task has its own datasets yielding ``(x, y)`` (``y``: a class index, ``-1`` when missing, or
a float vector of ``n_outputs`` values, ``NaN`` when missing), or several tasks share one dataset
(``column`` set) yielding ``(x, ys)`` with ``ys [T, Y]`` holding every task's label row.

:class:`StreamingSampler` draws the *same* indices as the in-memory
:class:`~sharewise.data.sampler.StackedTaskSampler` (it reuses that index logic: per-task epochs
without replacement from one seeded generator, or one common permutation for shared inputs), and
only fetches the items through a ``DataLoader`` (``batch_size=None``: each drawn ``[T, B]`` index
block is one item, so workers decode whole batches in parallel while the loop trains). Items
arrive in draw order, so a streamed run sees exactly the batches of an in-memory run with the same
seed. Exact resume with prefetching: the sampler keeps the index state from *before* every drawn
but not yet consumed batch, and :meth:`StreamingSampler.state_dict` returns the oldest one, so a
restored sampler redraws precisely the batches the killed process had prefetched but not used.

In-memory task sets never come here: they keep the tensor gather path.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from sharewise.data.sampler import StackedTaskSampler
from sharewise.errors import ConfigError, DataError
from sharewise.tasks.spec import TASK_KINDS, TaskKind


@dataclass
class DatasetTask:
    """One task whose splits are datasets (``val`` may be None). ``column``: this task's row in
    the ``ys [T, Y]`` of a dataset shared by several tasks (None: the dataset is this task's)."""

    name: str
    kind: TaskKind
    n_outputs: int
    train: Dataset
    val: Dataset | None
    test: Dataset
    input_shape: tuple[int, ...]
    column: int | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    target_mean: Tensor | None = None  # as TaskData's: set when the datasets' targets are standardised
    target_std: Tensor | None = None

    def __post_init__(self) -> None:
        if self.kind not in TASK_KINDS:
            raise DataError(f"task {self.name!r}: kind must be one of {TASK_KINDS}, got {self.kind!r}")
        if len(self.train) == 0 or len(self.test) == 0:  # type: ignore[arg-type]
            raise DataError(f"task {self.name!r}: the train and test datasets must not be empty")

    @property
    def target_dim(self) -> int:
        return self.n_outputs if self.kind == "regression" else 1

    def dataset(self, split: str) -> Dataset | None:
        return getattr(self, split)

    def size(self, split: str) -> int:
        ds = self.dataset(split)
        return 0 if ds is None else len(ds)  # type: ignore[arg-type]

    def summary(self) -> dict[str, Any]:
        return {"kind": self.kind, "n_outputs": self.n_outputs, "input_shape": list(self.input_shape),
                "n_train": self.size("train"), "n_val": self.size("val"), "n_test": self.size("test"),
                "streamed": True, **({"notes": self.notes} if self.notes else {})}


def is_streamed(tasks: Sequence[Any]) -> bool:
    """True when the tasks are :class:`DatasetTask` s (all of them; mixing is an error)."""
    streamed = [isinstance(t, DatasetTask) for t in tasks]
    if any(streamed) and not all(streamed):
        raise ConfigError("a task set mixes in-memory tasks (TaskData) and streamed ones (DatasetTask); "
                          "make every task one kind")
    return bool(streamed) and all(streamed)


def split_size(task: Any, split: str) -> int:
    """Number of examples in ``split`` of a TaskData or DatasetTask."""
    return task.size(split) if isinstance(task, DatasetTask) else int(task.split(split)[0].shape[0])


def _label_row(y: Any, width: int) -> Tensor:
    row = torch.as_tensor(y, dtype=torch.float32).reshape(-1)
    return torch.nn.functional.pad(row, (0, width - row.numel()))


def _as_is(batch: Any) -> Any:
    """The DataLoader's collate function: the fetcher already stacked the batch."""
    return batch


class _BatchFetch(Dataset):
    """Item = one drawn index block; returns the stacked batch (this runs in the workers)."""

    def __init__(self, datasets: Sequence[Dataset], columns: Sequence[int] | None, width: int) -> None:
        self.datasets, self.columns, self.width = list(datasets), columns, width

    def __len__(self) -> int:  # not used: the sampler is infinite
        return 0

    def __getitem__(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        if self.columns is not None:  # shared inputs: idx [B] rows of one dataset
            items = [self.datasets[0][int(i)] for i in idx]
            x = torch.stack([torch.as_tensor(it[0], dtype=torch.float32) for it in items])  # [B, *in]
            ys = torch.stack([torch.as_tensor(it[1], dtype=torch.float32).reshape(len(it[1]), -1)
                              for it in items])  # [B, T_all, Y']
            ys = ys[:, list(self.columns)]  # [B, T, Y']
            ys = torch.nn.functional.pad(ys, (0, self.width - ys.shape[-1]))
            return x, ys.transpose(0, 1).contiguous()  # [B, *in], [T, B, Y]
        xs, ys = [], []
        for ds, rows in zip(self.datasets, idx):  # idx [T, B]
            items = [ds[int(i)] for i in rows]
            xs.append(torch.stack([torch.as_tensor(it[0], dtype=torch.float32) for it in items]))
            ys.append(torch.stack([_label_row(it[1], self.width) for it in items]))
        return torch.stack(xs), torch.stack(ys)  # [T, B, *in], [T, B, Y]


class StreamingSampler(StackedTaskSampler):
    """Yields ``(x [T, B, *in], y [T, B, Y])`` like :class:`StackedTaskSampler`, fetched by
    ``num_workers`` DataLoader workers (0: in this process). Not sharded (single process)."""

    def __init__(self, tasks: Sequence[DatasetTask], batch_size: int, generator: torch.Generator,
                 shared_inputs: bool | None = None, num_workers: int = 0, prefetch_factor: int = 2) -> None:
        self.batch_size, self.generator = batch_size, generator
        self._cols = None
        self.n_tasks = len(tasks)
        shapes = {tuple(t.input_shape) for t in tasks}
        if len(shapes) != 1:
            raise DataError(f"streamed tasks need one input shape, but got {sorted(shapes)}")
        self.input_shape = shapes.pop()
        same = all(t.train is tasks[0].train and t.column is not None for t in tasks)
        self.shared_inputs = bool(same if shared_inputs is None else shared_inputs)
        if self.shared_inputs and not same:
            raise DataError("shared_inputs=True needs every streamed task to read its column of one shared "
                            "training dataset (DatasetTask.column)")
        self.target_width = max(t.target_dim for t in tasks)
        columns = [int(t.column) for t in tasks] if self.shared_inputs else None  # type: ignore[arg-type]
        datasets = [tasks[0].train] if self.shared_inputs else [t.train for t in tasks]
        self._fetch = _BatchFetch(datasets, columns, self.target_width)
        self._version = 0  # bumped when a permutation is redrawn (so snapshots copy perms rarely)
        self._perms_copy: tuple[int, Tensor] | None = None
        self._init_indices([len(d) for d in datasets])  # type: ignore[arg-type]
        self.num_workers, self.prefetch_factor = num_workers, prefetch_factor
        self._it: Iterator[tuple[Tensor, Tensor]] | None = None
        self._pending: deque[dict[str, Any]] = deque()  # index state before each prefetched batch

    def _reshuffle(self, t: int) -> None:
        super()._reshuffle(t)
        self._version += 1

    def _snapshot(self) -> dict[str, Any]:
        if self._perms_copy is None or self._perms_copy[0] != self._version:
            self._perms_copy = (self._version, self.perms.clone())
        return {"generator": self.generator.get_state(), "perms": self._perms_copy[1], "pos": self.pos.clone()}

    def _draws(self) -> Iterator[Tensor]:
        while True:
            self._pending.append(self._snapshot())
            idx = self._indices()  # [T, B], or [1, B] shared
            yield idx[0] if self.shared_inputs else idx

    def _loader(self) -> Iterator[tuple[Tensor, Tensor]]:
        loader = DataLoader(self._fetch, batch_size=None, sampler=self._draws(), num_workers=self.num_workers,
                            prefetch_factor=self.prefetch_factor if self.num_workers else None,
                            collate_fn=_as_is)
        return iter(loader)

    def next(self) -> tuple[Tensor, Tensor]:
        if self._it is None:
            self._it = self._loader()
        x, y = next(self._it)
        self._pending.popleft()
        if self.shared_inputs:
            return x.unsqueeze(0).expand(self.n_tasks, *x.shape), y  # [T, B, *in] (a view)
        return x, y

    def state_dict(self) -> dict[str, Any]:
        state = self._pending[0] if self._pending else self._snapshot()
        return {"generator": state["generator"].clone(), "perms": state["perms"].clone(), "pos": state["pos"].clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.close()
        super().load_state_dict(state)
        self._version += 1

    def close(self) -> None:
        """Stop the workers (a new iterator starts on the next batch)."""
        self._it = None  # the DataLoader iterator shuts its workers down when collected
        self._pending.clear()


def split_batches(task: DatasetTask, split: str, batch_size: int, width: int,
                  num_workers: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
    """The split in order, as ``(x [B, *in], y [B, width])`` chunks (streamed evaluation)."""
    ds = task.dataset(split)
    if ds is None or len(ds) == 0:  # type: ignore[arg-type]
        return
    fetch = _BatchFetch([ds], [task.column] if task.column is not None else None, width)
    n = len(ds)  # type: ignore[arg-type]
    blocks = [torch.arange(s, min(n, s + batch_size)) for s in range(0, n, batch_size)]
    if task.column is None:
        blocks = [b.unsqueeze(0) for b in blocks]  # [1, B]
    loader = DataLoader(fetch, batch_size=None, sampler=blocks, num_workers=num_workers, collate_fn=_as_is)
    for x, y in loader:
        yield (x, y[0]) if task.column is not None else (x[0], y[0])


def make_sampler(tasks: Sequence[Any], batch_size: int, generator: torch.Generator,
                 shard: tuple[int, int] = (0, 1), num_workers: int = 0) -> StackedTaskSampler:
    """The in-memory gather sampler for TaskData, the streaming one for DatasetTasks."""
    if not is_streamed(tasks):
        return StackedTaskSampler(tasks, batch_size, generator, shard=shard)
    if shard[1] > 1:
        raise ConfigError("streamed (Dataset) tasks train in one process; data-parallel training needs "
                          "in-memory tasks")
    return StreamingSampler(tasks, batch_size, generator, num_workers=num_workers)


def first_inputs(task: Any, n: int) -> Tensor:
    """The first ``n`` training inputs ``[n, *in]`` of a TaskData or DatasetTask (shape checks)."""
    if not isinstance(task, DatasetTask):
        return task.x_train[:n]
    ds = task.train
    return torch.stack([torch.as_tensor(ds[i][0], dtype=torch.float32) for i in range(min(n, len(ds)))])  # type: ignore[arg-type]


def require_in_memory(tasks: Sequence[Any], what: str) -> None:
    """For commands that need the splits as tensors (RSA affinity, export's test check)."""
    if is_streamed(tasks):
        raise ConfigError(f"sharewise {what} needs in-memory tasks (TaskData), but the task set streams its data "
                          "(DatasetTask, e.g. omniglot_alphabets lazy=true); run it without streaming")
