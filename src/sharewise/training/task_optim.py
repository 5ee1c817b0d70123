"""Optimisers for updates that involve only some tasks (alternating mode, task sampling).

Per-task parameters (encoders, heads, soft-order and allocation logits) are stored stacked,
``[T, ...]``, so that all tasks run in one batched forward pass; and some parameters hold blocks
of several owners (a DenseLayerBank's layers ``[in, L, out]`` are the single-task copies or the
branches of a tree; the last NDDR layer's rows are per task). In an update of task t alone, what
other tasks own gets a zero gradient, not none, and a plain optimiser would still move it: Adam
by its momentum and every optimiser by weight decay (measured before this module: a task-1
update moved task 0's head by 4.8e-3 with task 0's gradient exactly 0). The paper's per-task
parameters are separate variables that another task's update never touches.

:class:`PerTaskOptimizer` restores that. Each parameter it holds has an owner layout (see
``MultiTaskModel.parameter_owners``): index i along one axis belongs to some tasks (a stacked
parameter: index t is task t's). Every index has its own optimiser state, including its own
step count (so Adam's bias correction counts only its owners' updates). ``step(tasks)`` updates
only the indices owned by ``tasks``; every other index and its state stay bit-identical. The
update itself is torch's own kernels (:mod:`sharewise.training.kernels`: fused Adam, foreach
SGD/RMSprop) run on views, so a block moves exactly as a separate parameter under
``torch.optim`` would (blocks along a later axis are strided: they are updated on contiguous
copies, written back). One call covers all parameters of a group: a contiguous run of indices
with equal step counts (one task's block in alternating mode, the whole tensor in joint mode) is
one view; which indices a task subset moves is computed once per subset.

:class:`TaskSlicedOptimizer` pairs it with a :class:`~sharewise.training.plain_optim.PlainOptimizer`
(torch's Adam/SGD/RMSprop without ``torch.optim``'s import cost) for the shared parameters,
behind one ``zero_grad`` / ``step(tasks)`` / ``state_dict`` interface.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Set
from typing import Any

import torch
from torch import Tensor

from sharewise.components.usage import ParameterUse
from sharewise.training.kernels import BUFFERS as _BUFFERS
from sharewise.training.kernels import OPTIMIZERS, adam_, rmsprop_, sgd_
from sharewise.training.plain_optim import GroupedOptimizer, PlainOptimizer

__all__ = ["OPTIMIZERS", "PerTaskOptimizer", "TaskSlicedOptimizer"]


def _merge(units: list[tuple[int, int]], steps: list[int]) -> list[tuple[int, int]]:
    """Sorted index ranges ``units`` joined where they touch and have equal step counts."""
    runs = [units[0]]
    for a, b in units[1:]:
        if a == runs[-1][1] and steps[a] == steps[runs[-1][0]]:
            runs[-1] = (runs[-1][0], b)
        else:
            runs.append((a, b))
    return runs


class PerTaskOptimizer(GroupedOptimizer):
    """``kind`` ('adam', 'sgd' with momentum 0.9, 'rmsprop') over parameters whose blocks belong
    to some tasks; see the module docstring.

    ``owners`` maps ``id(p)`` to a :class:`~sharewise.components.usage.ParameterUse` over all T
    tasks: index i along ``dim`` (the whole tensor for ``dim=None``) belongs to the tasks
    ``users[:, i]``, and moves only in updates that involve one of them. A parameter without an
    entry is stacked: index t along axis 0 belongs to task t. State per parameter: ``step`` ``[n]``
    (float32, one update count per index along ``dim``) and the kind's buffers, shaped like the
    parameter."""

    def __init__(self, params: Iterable[Any], kind: str, n_tasks: int, lr: float = 1e-3,
                 weight_decay: float = 0.0, owners: Mapping[int, ParameterUse] | None = None) -> None:
        self.n_tasks = n_tasks
        self._given = dict(owners or {})
        self._layouts: dict[int, tuple[int | None, Tensor]] = {}
        self._plans: dict[tuple[int, ...], dict[int, list[tuple[int, int]]]] = {}
        self._steps: dict[int, list[int]] = {}  # python copy of state[p]["step"]: no device sync
        self._views: dict[tuple[int, int, int], tuple[Tensor, ...]] = {}
        super().__init__(params, kind, lr, weight_decay)  # registers every group's layouts

    def add_param_group(self, group: dict[str, Any]) -> None:
        super().add_param_group(group)
        self._plans = {}
        for p in self.param_groups[-1]["params"]:
            self._register(p)

    def _register(self, p: Tensor) -> None:
        """Check and store the layout of ``p``: its block axis and ``owners [T, n]`` (bool)."""
        use = self._given.get(id(p))
        if use is None:
            if p.dim() == 0 or p.shape[0] != self.n_tasks:
                raise ValueError(f"a per-task parameter needs the task axis first ([{self.n_tasks}, ...]), "
                                 f"got shape {list(p.shape)}")
            self._layouts[id(p)] = (0, torch.eye(self.n_tasks, dtype=torch.bool))
            return
        n = 1 if use.dim is None else p.shape[use.dim]
        if tuple(use.users.shape) != (self.n_tasks, n):
            raise ValueError(f"the owners of a parameter of shape {list(p.shape)} along dim {use.dim} must be "
                             f"[{self.n_tasks}, {n}] (tasks x blocks), got {list(use.users.shape)}")
        self._layouts[id(p)] = (use.dim, use.users.detach().to("cpu", torch.bool))

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)  # step counts: float32 beside the parameter (fused kernels)
        self._steps, self._views = {}, {}

    def _state(self, p: Tensor) -> dict[str, Any]:
        state = self.state[p]
        if not state:
            n = self._layouts[id(p)][1].shape[1]
            state["step"] = torch.zeros(n, dtype=torch.float32, device=p.device)
            for name in _BUFFERS[self.kind]:
                state[name] = torch.zeros_like(p, memory_format=torch.preserve_format)
        if id(p) not in self._steps:
            self._steps[id(p)] = [int(s) for s in state["step"].tolist()]
        return state

    def _plan(self, ids: list[int]) -> dict[int, list[tuple[int, int]]]:
        """``id(p) -> [(a, b), ...]``: the index ranges that ``ids`` own, cut where the owners
        change (indices with the same owners always have the same step count). Computed once
        per task subset: alternating mode repeats T subsets, so the hot path is a lookup."""
        key = tuple(ids)
        plan = self._plans.get(key)
        if plan is None:
            plan = {}
            rows = torch.tensor(ids, dtype=torch.long)
            for pid, (_, owners) in self._layouts.items():
                moving = owners[rows].any(0).tolist()  # [n]
                units: list[tuple[int, int]] = []
                for i, m in enumerate(moving):
                    if not m:
                        continue
                    if units and units[-1][1] == i and torch.equal(owners[:, i], owners[:, i - 1]):
                        units[-1] = (units[-1][0], i + 1)
                    else:
                        units.append((i, i + 1))
                plan[pid] = units
            self._plans[key] = plan
        return plan

    def step(self, tasks: Sequence[int] | None = None) -> None:
        """Update the blocks owned by ``tasks`` (None: all tasks) of every parameter with a gradient."""
        self.update(tasks)

    def update(self, tasks: Sequence[int] | None = None) -> None:
        """The same as :meth:`step`."""
        ids = list(range(self.n_tasks)) if tasks is None else sorted({int(t) for t in tasks})
        if not ids:
            return
        with torch.no_grad():
            self._update(ids)

    def _update(self, ids: list[int]) -> None:
        plan = self._plan(ids)
        for group in self.param_groups:
            views: dict[str, list[Tensor]] = {k: [] for k in ("param", "grad", "step", "_runs", "_firsts",
                                                              *_BUFFERS[self.kind])}
            for p in group["params"]:
                units = plan[id(p)]
                if p.grad is None or not units:
                    continue
                state = self._state(p)
                steps = self._steps[id(p)]
                for a, b in _merge(units, steps):
                    self._add_views(views, p, state, a, b)
                    for i in range(a, b):
                        steps[i] += 1
            if views["param"]:
                self._apply_contiguous(group, views)
                self._sync_run_steps(views)

    def _add_views(self, views: dict[str, list[Tensor]], p: Tensor, state: dict[str, Any], a: int, b: int) -> None:
        """Index run ``[a, b)`` (equal step counts) as one view per tensor; the run's first step
        entry stands for all of them and is copied to the rest after the update. Views of the
        parameter and its state are cached (their storage never changes; loading a state
        clears the cache); the gradient is a new tensor every backward pass."""
        dim = self._layouts[id(p)][0]
        key = (id(p), a, b)
        cached = self._views.get(key)
        if cached is None:
            cut = (lambda t: t) if dim is None else (lambda t: t.narrow(dim, a, b - a))
            cached = self._views[key] = (cut(p), state["step"][a], state["step"][a:b],
                                         *(cut(state[name]) for name in _BUFFERS[self.kind]))
        views["param"].append(cached[0])
        views["grad"].append(p.grad if dim is None else p.grad.narrow(dim, a, b - a))  # type: ignore[union-attr]
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

    def _apply_contiguous(self, group: dict[str, Any], v: dict[str, list[Tensor]]) -> None:
        """``_apply`` on contiguous copies of the views that are not contiguous (a block along a
        later axis, e.g. layers of a DenseLayerBank ``[in, L, out]``), written back afterwards:
        the fused kernels assume contiguous tensors (on strided views they write elsewhere)."""
        strided = [i for i, p in enumerate(v["param"]) if not p.is_contiguous()]
        if not strided:
            self._apply(group, v)
            return
        names = ("param", *_BUFFERS[self.kind])
        originals = {name: [v[name][i] for i in strided] for name in names}
        for i in strided:
            v["grad"][i] = v["grad"][i].contiguous()
            for name in names:
                v[name][i] = v[name][i].contiguous()
        self._apply(group, v)
        for name in names:
            for j, i in enumerate(strided):
                originals[name][j].copy_(v[name][i])

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
    """Shared parameters under a :class:`PlainOptimizer` (torch's update), parameters that belong to
    some tasks under a :class:`PerTaskOptimizer`; ``groups`` are torch-style dicts (``name``,
    ``params``, ``lr``, ``weight_decay``), ``per_task`` the ids of the task-owned parameters and
    ``owners`` their layouts (``PerTaskOptimizer``'s; a parameter without one is stacked ``[T, ...]``)."""

    def __init__(self, groups: list[dict[str, Any]], kind: str, n_tasks: int, lr: float,
                 per_task: Set[int], owners: Mapping[int, ParameterUse] | None = None) -> None:
        shared = [{**g, "params": [p for p in g["params"] if id(p) not in per_task]} for g in groups]
        stacked = [{**g, "params": [p for p in g["params"] if id(p) in per_task]} for g in groups]
        shared = [g for g in shared if g["params"]]
        stacked = [g for g in stacked if g["params"]]
        self.kind, self.n_tasks, self.lr = kind, n_tasks, lr
        self._owners = dict(owners or {})
        # Fused Adam for the shared parameters: one kernel for all of them; measured 8 % faster per
        # step at UCI sizes on a CPU than foreach (benchmarks/bench_soft_ordering.py).
        self.shared = PlainOptimizer(shared, kind, lr) if shared else None
        self._n_shared = len(shared)
        self.per_task = PerTaskOptimizer(stacked, kind, n_tasks, lr, owners=self._owners) if stacked else None

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """The groups in the order they were given (groups added later come last)."""
        shared = self.shared.param_groups if self.shared is not None else []
        stacked = self.per_task.param_groups if self.per_task is not None else []
        return shared[:self._n_shared] + stacked + shared[self._n_shared:]

    def add_param_group(self, group: dict[str, Any], per_task: Set[int] = frozenset()) -> None:
        """A group added after construction (e.g. learned loss weights); ``per_task``: the ids of
        its parameters stacked ``[T, ...]`` (one entry per task, moved only in that task's updates)."""
        shared = [p for p in group["params"] if id(p) not in per_task]
        stacked = [p for p in group["params"] if id(p) in per_task]
        if shared and self.shared is None:
            self.shared = PlainOptimizer([{**group, "params": shared}], self.kind, group["lr"])
        elif shared:
            self.shared.add_param_group({**group, "params": shared})
        if stacked and self.per_task is None:
            self.per_task = PerTaskOptimizer([{**group, "params": stacked}], self.kind, self.n_tasks, self.lr,
                                             owners=self._owners)
        elif stacked:
            self.per_task.add_param_group({**group, "params": stacked})

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
