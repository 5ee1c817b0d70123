"""Optimisers for updates that involve only some tasks (alternating mode, task sampling).

Per-task parameters (encoders, heads, soft-order and allocation logits) are stored stacked,
``[T, ...]``, so that all tasks run in one batched forward pass. In an update of task t alone,
the other tasks' slices get a zero gradient, not none, and a plain optimiser would still move
them: Adam by its momentum and every optimiser by weight decay (measured before this module: a
task-1 update moved task 0's head by 4.8e-3 with task 0's gradient exactly 0). The paper's
per-task parameters are separate variables that another task's update never touches.

:class:`PerTaskOptimizer` restores that: each task's slice of a stacked parameter is treated as
a separate parameter with its own optimiser state, including its own step count (so Adam's bias
correction counts only that task's updates). ``step(tasks)`` updates only the slices of
``tasks``; every other slice and its state stay bit-identical. The update itself is torch's own
kernels (:mod:`sharewise.training.kernels`: fused Adam, foreach SGD/RMSprop) run on views of the
slices, so a slice
moves exactly as a separate parameter under ``torch.optim`` would. One call covers all stacked
parameters of a group: a contiguous run of tasks with equal step counts (one task in alternating
mode, all tasks in joint mode) is one view per parameter; only other subsets fall back to one
view per task.

:class:`TaskSlicedOptimizer` pairs it with a :class:`~sharewise.training.plain_optim.PlainOptimizer`
(torch's Adam/SGD/RMSprop without ``torch.optim``'s import cost) for the shared parameters,
behind one ``zero_grad`` / ``step(tasks)`` / ``state_dict`` interface.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor

from sharewise.training.kernels import BUFFERS as _BUFFERS
from sharewise.training.kernels import OPTIMIZERS, adam_, rmsprop_, sgd_
from sharewise.training.plain_optim import GroupedOptimizer, PlainOptimizer

__all__ = ["OPTIMIZERS", "PerTaskOptimizer", "TaskSlicedOptimizer"]


def _runs(tasks: list[int], steps: list[int]) -> list[tuple[int, int]]:
    """``[(a, b), ...]``: sorted ``tasks`` as contiguous runs ``a..b-1`` of equal step count."""
    runs: list[tuple[int, int]] = []
    start = prev = tasks[0]
    for t in tasks[1:]:
        if t != prev + 1 or steps[t] != steps[start]:
            runs.append((start, prev + 1))
            start = t
        prev = t
    runs.append((start, prev + 1))
    return runs


class PerTaskOptimizer(GroupedOptimizer):
    """``kind`` ('adam', 'sgd' with momentum 0.9, 'rmsprop') over parameters ``[T, ...]`` whose
    slice t belongs to task t; see the module docstring. State per parameter: ``step`` ``[T]``
    (float32, per-task update counts) and the kind's buffers, shaped like the parameter."""

    def __init__(self, params: Iterable[Any], kind: str, n_tasks: int, lr: float = 1e-3,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, kind, lr, weight_decay)
        self.n_tasks = n_tasks
        for group in self.param_groups:
            for p in group["params"]:
                if p.dim() == 0 or p.shape[0] != n_tasks:
                    raise ValueError(f"a per-task parameter needs the task axis first ([{n_tasks}, ...]), "
                                     f"got shape {list(p.shape)}")
        self._steps: dict[int, list[int]] = {}  # python copy of state[p]["step"]: no device sync
        self._views: dict[tuple[int, int, int], tuple[Tensor, ...]] = {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)  # step counts: float32 beside the parameter (fused kernels)
        self._steps, self._views = {}, {}

    def _state(self, p: Tensor) -> dict[str, Any]:
        state = self.state[p]
        if not state:
            state["step"] = torch.zeros(self.n_tasks, dtype=torch.float32, device=p.device)
            for name in _BUFFERS[self.kind]:
                state[name] = torch.zeros_like(p, memory_format=torch.preserve_format)
        if id(p) not in self._steps:
            self._steps[id(p)] = [int(s) for s in state["step"].tolist()]
        return state

    def step(self, tasks: Sequence[int] | None = None) -> None:
        """Update the slices of ``tasks`` (None: all tasks) of every parameter with a gradient."""
        self.update(tasks)

    def update(self, tasks: Sequence[int] | None = None) -> None:
        """The same as :meth:`step`."""
        ids = list(range(self.n_tasks)) if tasks is None else [int(t) for t in tasks]
        if not ids:
            return
        with torch.no_grad():
            self._update(ids)

    def _update(self, ids: list[int]) -> None:
        for group in self.param_groups:
            views: dict[str, list[Tensor]] = {k: [] for k in ("param", "grad", "step", "_runs", "_firsts",
                                                              *_BUFFERS[self.kind])}
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self._state(p)
                steps = self._steps[id(p)]
                for a, b in _runs(sorted(set(ids)), steps):
                    self._add_views(views, p, state, a, b)
                    for t in range(a, b):
                        steps[t] += 1
            if views["param"]:
                self._apply(group, views)
                self._sync_run_steps(views)

    def _add_views(self, views: dict[str, list[Tensor]], p: Tensor, state: dict[str, Any], a: int, b: int) -> None:
        """Task run ``[a, b)`` (equal step counts) as one view per tensor; the run's first step
        entry stands for all of them and is copied to the rest after the update. Views of the
        parameter and its state are cached (their storage never changes; loading a state
        clears the cache); the gradient is a new tensor every backward pass."""
        key = (id(p), a, b)
        cached = self._views.get(key)
        if cached is None:
            one = b - a == 1
            sl: Any = a if one else slice(a, b)
            cached = self._views[key] = (p[sl], state["step"][a], state["step"][a:b],
                                         *(state[name][sl] for name in _BUFFERS[self.kind]))
        views["param"].append(cached[0])
        views["grad"].append(p.grad[a] if b - a == 1 else p.grad[a:b])  # type: ignore[index]
        views["step"].append(cached[1])
        if b - a > 1:
            views["_runs"].append(cached[2])
            views["_firsts"].append(cached[1])
        for name, view in zip(_BUFFERS[self.kind], cached[3:]):
            views[name].append(view)

    @staticmethod
    def _sync_run_steps(views: dict[str, list[Tensor]]) -> None:
        for run, first in zip(views["_runs"], views["_firsts"]):
            run.copy_(first.expand_as(run))

    def _apply(self, group: dict[str, Any], v: dict[str, list[Tensor]]) -> None:
        lr, wd = group["lr"], group["weight_decay"]
        if self.kind == "adam":  # as torch.optim.Adam(fused=True) with its defaults
            adam_(v["param"], v["grad"], v["exp_avg"], v["exp_avg_sq"], v["step"], lr=lr, weight_decay=wd)
        elif self.kind == "sgd":  # as torch.optim.SGD(momentum=0.9); a zero buffer's first step = grad
            torch._foreach_add_(v["step"], 1)
            sgd_(v["param"], v["grad"], v["momentum_buffer"], lr=lr, weight_decay=wd)  # type: ignore[arg-type]
        else:  # as torch.optim.RMSprop with its defaults
            rmsprop_(v["param"], v["grad"], v["square_avg"], v["step"], lr=lr, weight_decay=wd)


class TaskSlicedOptimizer:
    """Shared parameters under a :class:`PlainOptimizer` (torch's update), per-task (stacked) parameters under a
    :class:`PerTaskOptimizer`; ``groups`` are torch-style dicts (``name``, ``params``, ``lr``,
    ``weight_decay``) and ``per_task`` the ids of the stacked parameters."""

    def __init__(self, groups: list[dict[str, Any]], kind: str, n_tasks: int, lr: float,
                 per_task: set[int]) -> None:
        shared = [{**g, "params": [p for p in g["params"] if id(p) not in per_task]} for g in groups]
        stacked = [{**g, "params": [p for p in g["params"] if id(p) in per_task]} for g in groups]
        shared = [g for g in shared if g["params"]]
        stacked = [g for g in stacked if g["params"]]
        self.kind = kind
        # Fused Adam for the shared parameters: one kernel for all of them; measured 8 % faster per
        # step at UCI sizes on a CPU than foreach (benchmarks/bench_soft_ordering.py).
        self.shared = PlainOptimizer(shared, kind, lr) if shared else None
        self._n_shared = len(shared)
        self.per_task = PerTaskOptimizer(stacked, kind, n_tasks, lr) if stacked else None

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """The groups in the order they were given (groups added later come last)."""
        shared = self.shared.param_groups if self.shared is not None else []
        stacked = self.per_task.param_groups if self.per_task is not None else []
        return shared[:self._n_shared] + stacked + shared[self._n_shared:]

    def add_param_group(self, group: dict[str, Any]) -> None:
        """A group of shared parameters added after construction (e.g. learned loss weights)."""
        if self.shared is None:
            self.shared = PlainOptimizer([group], self.kind, group["lr"])
        else:
            self.shared.add_param_group(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in (self.shared, self.per_task):
            if opt is not None:
                opt.zero_grad(set_to_none=set_to_none)

    def step(self, tasks: Sequence[int] | None = None) -> None:
        """One update of the shared parameters and of the slices of ``tasks`` (None: all)."""
        if self.shared is not None:
            self.shared.step()
        if self.per_task is not None:
            self.per_task.update(tasks)

    def state_dict(self) -> dict[str, Any]:
        return {"shared": None if self.shared is None else self.shared.state_dict(),
                "per_task": None if self.per_task is None else self.per_task.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, opt in (("shared", self.shared), ("per_task", self.per_task)):
            if (state.get(key) is None) != (opt is None):
                raise ValueError(f"optimizer state has {'no' if state.get(key) is None else 'a'} {key!r} part, "
                                 f"but this model has {'none' if opt is None else 'one'}")
            if opt is not None:
                opt.load_state_dict(state[key])
