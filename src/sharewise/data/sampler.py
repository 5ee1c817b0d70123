"""Draws one training batch per task and stacks them, without a Python loop over tasks.

All tasks' training sets are concatenated once (inputs flattened and zero-padded to the widest
task when widths differ). Each task walks through its own random permutation (epochs without
replacement); a step gathers ``B`` indices per task with one ``gather`` and one ``index_select``.
Only when a task finishes an epoch does that task get a new permutation (the rare slow path).
The sampler's whole state (generator, permutations, positions) is checkpointable for exact resume.

Shared inputs (``shared_inputs``): when every task is defined on the *same* inputs (one image,
several labels, as in the branched-networks benchmarks), the tasks walk one common permutation,
so a step feeds the same ``B`` inputs to every task. The inputs are then stored once and the
stacked batch is an expanded view ``[T, B, *in]`` of one ``[B, *in]`` batch; the shapes are
unchanged. By default this mode is on exactly when all tasks' ``x_train`` is one tensor object.

Sharding (``shard=(rank, world)``, data-parallel training): every rank draws the same global
batch of ``batch_size`` indices per task (so every rank's sampler state stays identical) and
returns only its contiguous slice of ``batch_size // world`` samples per task.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from sharewise.tasks.spec import TaskData


def stack_inputs(xs: Sequence[Tensor]) -> tuple[list[Tensor], tuple[int, ...]]:
    """Bring every task's inputs to one sample shape (flatten + zero-pad if shapes differ)."""
    shapes = {tuple(x.shape[1:]) for x in xs}
    if len(shapes) == 1:
        return list(xs), next(iter(shapes))
    flat = [x.reshape(x.shape[0], -1) for x in xs]
    width = max(f.shape[1] for f in flat)
    return [torch.nn.functional.pad(f, (0, width - f.shape[1])) for f in flat], (width,)


def target_rows(task: TaskData, y: Tensor, width: int) -> Tensor:
    """Targets as float rows ``[N, width]`` (class index in column 0 for classification)."""
    rows = y.float().unsqueeze(1) if y.dim() == 1 else y.float().flatten(1)  # also for an empty split
    return torch.nn.functional.pad(rows, (0, width - rows.shape[1]))


class StackedTaskSampler:
    """Yields ``(x [T, B, *in], y [T, B, Y])``: one batch of ``batch_size`` per task."""

    def __init__(self, tasks: Sequence[TaskData], batch_size: int, generator: torch.Generator,
                 shared_inputs: bool | None = None, shard: tuple[int, int] = (0, 1)) -> None:
        rank, world = shard
        if not 0 <= rank < world or batch_size % world:
            raise ValueError(f"expected shard=(rank, world) with 0 <= rank < world dividing batch_size="
                             f"{batch_size}, but got shard={shard}")
        self.batch_size, self.generator = batch_size, generator
        # the columns of the global [T, batch_size] draw this rank keeps (None: all of them)
        local = batch_size // world
        self._cols = None if world == 1 else slice(rank * local, (rank + 1) * local)
        self.n_tasks = len(tasks)
        same = all(t.x_train is tasks[0].x_train for t in tasks)
        if shared_inputs is None:
            shared_inputs = same and len(tasks) > 1
        if shared_inputs and not same:
            from sharewise.errors import DataError

            raise DataError("shared_inputs=True needs every task's x_train to be the same tensor, but "
                            f"the {len(tasks)} tasks have different training inputs")
        self.shared_inputs = bool(shared_inputs)
        self.target_width = max(t.target_dim for t in tasks)
        if self.shared_inputs:  # one copy of the inputs, one permutation for all tasks
            self.x_all = tasks[0].x_train  # [N, *in]
            self.input_shape = tuple(self.x_all.shape[1:])
            self.y_all = torch.stack([target_rows(t, t.y_train, self.target_width) for t in tasks])  # [T, N, Y]
            tasks = tasks[:1]
        else:
            xs, self.input_shape = stack_inputs([t.x_train for t in tasks])
            self.x_all = torch.cat(xs)  # [sum N, *in]
            self.y_all = torch.cat([target_rows(t, t.y_train, self.target_width) for t in tasks])
        self._init_indices([int(t.x_train.shape[0]) for t in tasks])
        self.offsets = torch.tensor([0] + self.sizes[:-1]).cumsum(0)  # [T] (or [1] when shared)

    def _init_indices(self, sizes: list[int]) -> None:
        """The index state (also used by the streaming sampler, so both draw the same indices)."""
        self.sizes = sizes
        self.perms = torch.zeros(len(sizes), max(sizes), dtype=torch.long)  # [T or 1, N_max]
        for t in range(len(sizes)):
            self._reshuffle(t)
        self.pos = torch.zeros(len(sizes), dtype=torch.long)  # [T or 1]
        self._size_t = torch.tensor(sizes)
        self._arange = torch.arange(self.batch_size)
        self._count_room()

    def _count_room(self) -> None:
        """How many more draws every task has left in its current epoch (a Python count: the
        per-step check costs no tensor ops and no sync; recounted after the slow path and a load)."""
        self._room = min((n - p) // self.batch_size for n, p in zip(self.sizes, self.pos.tolist()))

    def _reshuffle(self, t: int) -> None:
        self.perms[t, : self.sizes[t]] = torch.randperm(self.sizes[t], generator=self.generator)

    def _indices(self) -> Tensor:
        b = self.batch_size
        if self._room > 0:  # every task has b rows left in its epoch
            self._room -= 1
            idx = self.perms.gather(1, self.pos.unsqueeze(1) + self._arange)  # [T, B]
            self.pos += b
            return idx
        rows = []
        for t, n in enumerate(self.sizes):  # slow path: some task finishes its epoch
            take: list[Tensor] = []
            need = b
            while need > 0:
                p = int(self.pos[t])
                if p >= n:
                    self._reshuffle(t)
                    p = 0
                # clone: the view would change when this task's permutation is reshuffled below
                chunk = self.perms[t, p: min(n, p + need)].clone()
                take.append(chunk)
                need -= chunk.numel()
                self.pos[t] = p + chunk.numel()
            rows.append(torch.cat(take))
        self._count_room()
        return torch.stack(rows)

    def next(self) -> tuple[Tensor, Tensor]:
        if self.shared_inputs:
            rows = self._indices()[0]  # [B], one draw for every task
            if self._cols is not None:
                rows = rows[self._cols]  # [B / world], this rank's shard
            x = self.x_all.index_select(0, rows)  # [B, *in]
            y = self.y_all.index_select(1, rows)  # [T, B, Y]
            return x.unsqueeze(0).expand(self.n_tasks, *x.shape), y  # [T, B, *in] (a view)
        idx = self._indices() + self.offsets.unsqueeze(1)  # [T, B] global rows
        if self._cols is not None:
            idx = idx[:, self._cols].contiguous()  # [T, B / world], this rank's shard
        flat = idx.reshape(-1)
        x = self.x_all.index_select(0, flat).view(*idx.shape, *self.input_shape)
        y = self.y_all.index_select(0, flat).view(*idx.shape, self.target_width)
        return x, y

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "perms": self.perms.clone(),
                "pos": self.pos.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.perms.copy_(state["perms"])
        self.pos.copy_(state["pos"])
        self._count_room()
