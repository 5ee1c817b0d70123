"""Branched multi-task networks (Vandenhende et al., "Deciding what layers to share", Sec. 3.2).

A tree is a list of partitions of the tasks, one per core block ``f_d`` (depth 0 nearest the
input), each refining the previous one. Every group at depth ``d`` owns one copy of block
``f_d``; a task's features pass through the copies of the groups it belongs to. The tree is
plain data (``tree.json`` written by ``sharewise branch``, see ``sharewise.analysis.trees``); it
is returned by :meth:`Branched.learned_structure` so that it lands in the run's ``summary.json``.

Works over any core: the library's (dense layers, conv blocks) or the user's own D blocks (a
backbone split into stages). The copies come from ``CoreSpec.bank_of_blocks``: group g at depth d
gets a copy of block d, and all copies are layers of one bank addressed by index.

``shared_encoder`` (the MTL baseline of Table 1: every block shared, per-task heads) is the
branched network of the fully shared tree. It computes exactly what ``parallel`` computes (a
test checks this), but on shared inputs it runs each block once per *group* instead of once per
task, which makes the baseline T times cheaper on the shared-input benchmarks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sharewise.components.dropout import packed_dropout
from sharewise.analysis.trees import normalise_tree
from sharewise.components.layer_bank import LayerBank
from sharewise.components.usage import ParameterUse
from sharewise.errors import ConfigError, SharewiseError
from sharewise.sharing._registry import register_scheme
from sharewise.sharing.base import SharingScheme, StructureFigure, task_list
from sharewise.sharing.core_spec import CoreSpec

Partition = tuple[tuple[int, ...], ...]


class Branched(SharingScheme):
    """Tree-structured hard sharing: group g at depth d applies copy ``layer_of[d][g]`` of f_d.

    Forward keeps one feature tensor per active tree node. A node's tensor is ``[1, B, *f]`` while
    all its tasks still see identical features (shared inputs and a shared path so far), else
    ``[n, B, *f]`` with one row per active task of the node; so shared blocks on shared inputs run
    once, and per-task inputs (different images per task) are still handled exactly.
    """

    def __init__(self, bank: LayerBank, tree: Sequence[Partition], dropout: float,
                 task_names: Sequence[str] | None = None) -> None:
        n_tasks = sum(len(g) for g in tree[0])
        super().__init__(n_tasks)
        self.bank, self.tree, self.dropout = bank, [tuple(p) for p in tree], dropout
        self.depth = len(tree)
        self._users_cache: dict[tuple[int, ...], Tensor] = {}
        self.task_names = list(task_names) if task_names is not None else None
        self.layer_of: list[list[int]] = []  # [d][group] -> layer index in the bank
        self.group_of: list[list[int]] = []  # [d][task] -> group index at depth d
        start = 0
        for partition in self.tree:
            self.layer_of.append(list(range(start, start + len(partition))))
            start += len(partition)
            owner = [0] * n_tasks
            for g, group in enumerate(partition):
                for t in group:
                    owner[t] = g
            self.group_of.append(owner)
        if bank.n_layers != start:
            raise ConfigError(f"a branched tree with {start} groups needs {start} core blocks, got {bank.n_layers}")

    def _run_block(self, d: int, g: int, h: Tensor) -> Tensor:
        m, b = h.shape[:2]
        y = self.bank.forward_one(self.layer_of[d][g], h.reshape(m * b, *h.shape[2:]))
        y = packed_dropout(y, self.dropout, self.training)
        return y.view(m, b, *y.shape[1:])

    def forward(self, x: Tensor, tasks: Sequence[int] | None = None) -> Tensor:
        ids = task_list(tasks, self.n_tasks)
        same = x.shape[0] == 1 or bool((x[1:] == x[:1]).all())
        # node: (tasks of this node in stacked order, features [1 or n, B, *f])
        nodes: list[tuple[list[int], Tensor]] = [(list(range(len(ids))), x[:1] if same else x)]
        for d in range(self.depth):
            children: list[tuple[list[int], Tensor]] = []
            for rows, h in nodes:
                by_group: dict[int, list[int]] = {}
                for i, r in enumerate(rows):
                    by_group.setdefault(self.group_of[d][ids[r]], []).append(i)
                for g, members in by_group.items():
                    part = h if h.shape[0] == 1 else h[members]
                    children.append(([rows[i] for i in members], self._run_block(d, g, part)))
            nodes = children
        out: list[Tensor | None] = [None] * len(ids)
        for rows, h in nodes:
            for i, r in enumerate(rows):
                out[r] = h[0] if h.shape[0] == 1 else h[i]
        return torch.stack(out)  # type: ignore[arg-type]  # [T', B, *f']

    def export_task(self, task: int) -> nn.Module:
        """The tree reduced to task t's path: the copy of f_d of its group at every depth."""
        return nn.Sequential(*[self.bank.export_layer(self.layer_of[d][self.group_of[d][task]])
                               for d in range(self.depth)])

    def parameter_users(self, tasks: Sequence[int] | None = None) -> list[ParameterUse]:
        """Task t uses, at every depth d, the copy of f_d owned by its group there."""
        ids = tuple(task_list(tasks, self.n_tasks))
        users = self._users_cache.get(ids)
        if users is None:
            users = torch.zeros(len(ids), self.bank.n_layers, dtype=torch.bool)  # [T', L]
            for d in range(self.depth):
                for i, t in enumerate(ids):
                    users[i, self.layer_of[d][self.group_of[d][t]]] = True
            self._users_cache[ids] = users
        return self.bank.layer_uses(users)

    def parameter_owners(self) -> list[ParameterUse]:
        """A group's copy belongs to the group's tasks: a branch of tasks {1, 2} stays put, with
        its optimiser state, in task 3's update (copies shared by all tasks are left out)."""
        return self.parameter_users(None)

    @classmethod
    def adapted_options(cls, options: Mapping[str, Any], parent_structure: Mapping[str, Any],
                        new_tasks: Sequence[str], attach: Sequence[str] | None) -> dict[str, Any]:
        """The tree of the new tasks: each follows the path of the parent task it attaches to
        (``attach``, one parent task name per new task; see :func:`attach_rule` for the default),
        and new tasks on the same parent branch share its blocks."""
        if "tree" not in options:  # shared_encoder: one group per depth for any tasks, nothing to choose
            return dict(options)
        tree = parent_tree(parent_structure)
        attached = resolve_attach(parent_structure, new_tasks, attach)
        parent_names = list(parent_structure["tasks"])
        partitions = []
        for d in range(len(tree)):
            group_of = {t: g for g, group in enumerate(tree[d]) for t in group}
            groups: dict[int, list[int]] = {}
            for i, name in enumerate(attached):
                groups.setdefault(group_of[parent_names.index(name)], []).append(i)
            partitions.append([groups[g] for g in sorted(groups)])
        return {**dict(options), "tree": {"partitions": partitions, "tasks": list(new_tasks)}}

    def adopt_shared(self, parent_state: Mapping[str, Any], parent_structure: Mapping[str, Any],
                     attach: Sequence[str] | None) -> list[str]:
        """Group g at depth d copies the parent's block of the branch its tasks attach to; all frozen."""
        from sharewise.errors import AdaptError
        from sharewise.sharing.base import freeze_except

        tree = parent_tree(parent_structure)
        if len(tree) != self.depth:
            raise AdaptError(f"the parent run's tree has {len(tree)} depths but this model has {self.depth}")
        names = self.task_names or [str(t) for t in range(self.n_tasks)]
        attached = resolve_attach(parent_structure, names, attach)
        parent_names = list(parent_structure["tasks"])
        bank_state = {n[len("bank."):]: v for n, v in parent_state.items() if n.startswith("bank.")}
        offset = 0
        for d, partition in enumerate(tree):
            group_of = {t: g for g, group in enumerate(partition) for t in group}
            for g, group in enumerate(self.tree[d]):
                parent_group = group_of[parent_names.index(attached[group[0]])]
                try:
                    self.bank.load_layer(self.layer_of[d][g], bank_state, offset + parent_group)
                except NotImplementedError as exc:  # a bank kind without single-layer copies
                    raise AdaptError(f"cannot adapt over this parent: {exc}; adapt works over branched "
                                     "networks built on dense or user-module blocks") from exc
            offset += len(partition)
        freeze_except(self, set())
        return [n for n, _ in self.named_parameters()]

    def learned_structure(self) -> dict[str, Any]:
        named = self.task_names
        parts = [[[named[t] if named else t for t in g] for g in p] for p in self.tree]
        return {"tree": {"partitions": parts}, "groups_per_depth": [len(p) for p in self.tree]}

    @classmethod
    def render_structure(cls, structure: Mapping[str, Any], records: Sequence[Mapping[str, Any]] = ()
                         ) -> tuple[list[StructureFigure], dict[str, Any]]:
        """The tree: one node per group and depth (block copies), leaves = task heads (the tree's
        data stays in the report too)."""
        partitions = (structure.get("tree") or {}).get("partitions")
        if not partitions:
            return [], dict(structure)
        from sharewise.reporting.tree_plots import plot_tree

        named = [[[str(t) for t in g] for g in p] for p in partitions]
        fig, _ = plot_tree(named, title=f"{len(partitions)} depths, {sum(len(p) for p in partitions)} block copies")
        return [StructureFigure("tree", fig, "branched tree (groups per depth; leaves are the task heads)")], dict(structure)


def parent_tree(structure: Mapping[str, Any]) -> list[Partition]:
    """A finished branched run's tree (``summary.json`` structure) as task indices."""
    from sharewise.errors import AdaptError

    if "tree" not in structure or "tasks" not in structure:
        raise AdaptError("the parent run's summary.json has no branched tree; adapt a branched model over a "
                         "finished branched run")
    return normalise_tree(structure["tree"]["partitions"], list(structure["tasks"]))


def attach_rule(structure: Mapping[str, Any]) -> str:
    """The default branch for a new task: from the root, follow at every depth the child group
    that holds the most parent tasks (ties: the first), i.e. the parent's most widely shared
    path, whose blocks were trained on the most tasks; the new task attaches to the first parent
    task of the leaf reached (all tasks of a leaf share one path)."""
    tree = parent_tree(structure)
    current = set(range(len(structure["tasks"])))
    for partition in tree:
        children = [g for g in partition if set(g) <= current]
        current = set(max(children, key=len))
    return list(structure["tasks"])[min(current)]


def resolve_attach(structure: Mapping[str, Any], new_tasks: Sequence[str], attach: Sequence[str] | None) -> list[str]:
    """One parent task name per new task (``attach`` entries may be None: the default rule)."""
    from sharewise.errors import AdaptError

    parent_names = list(structure["tasks"])
    given = list(attach) if attach is not None else [None] * len(new_tasks)
    if len(given) != len(new_tasks):
        raise AdaptError(f"adapt.attach names {len(given)} parent tasks but there are {len(new_tasks)} new tasks "
                         f"{list(new_tasks)}; give one parent task (or null) per new task")
    bad = [a for a in given if a is not None and a not in parent_names]
    if bad:
        raise AdaptError(f"adapt.attach names {bad}, which are not tasks of the parent run {parent_names}")
    default = attach_rule(structure)
    return [a if a is not None else default for a in given]


def load_tree(tree: str | list | dict, n_tasks: int) -> tuple[list[Partition], list[str] | None]:
    """A tree from a ``tree.json`` path, its dict, or inline partitions -> (index tree, names).

    Groups may name tasks by index, or by name when the tree lists its ``tasks`` (``tree.json``
    from ``sharewise branch`` does: the task order of the affinity run, i.e. the config's).
    """
    data: Any = tree
    if isinstance(tree, str):
        path = Path(tree).expanduser()
        if not path.is_file():
            raise ConfigError(f"scheme_options.tree: no tree file at {str(path)!r}; pass the tree.json "
                              f"written by `sharewise branch`")
        from sharewise.readers import read_json

        try:
            data = read_json(path, "tree file (tree.json from `sharewise branch`)")
        except SharewiseError as err:
            raise ConfigError(f"scheme_options.tree: {err}") from None
    if isinstance(data, list):
        data = {"partitions": data}
    if not isinstance(data, dict) or "partitions" not in data:
        raise ConfigError(f"scheme_options.tree: expected a path, a list of partitions or a mapping with "
                          f"'partitions', got {tree!r}")
    names = data.get("tasks")
    if names is not None and len(names) != n_tasks:
        raise ConfigError(f"scheme_options.tree: the tree covers {len(names)} tasks {list(names)} but the "
                          f"model has {n_tasks} tasks; build the tree from an affinity run of this config")
    partitions = normalise_tree(data["partitions"], list(names) if names is not None else n_tasks)
    covered = {t for g in partitions[0] for t in g}
    if covered != set(range(n_tasks)):
        raise ConfigError(f"scheme_options.tree: the tree covers {len(covered)} tasks but the model has "
                          f"{n_tasks}; every task must appear once per depth")
    return partitions, (list(names) if names is not None else None)


def _check_tree_option(options: dict[str, Any], cfg: Any, given: dict[str, Any]) -> list[str]:
    """Validate-time check of ``tree``: given, and a file that exists when it is a path."""
    tree = options.get("tree")
    if tree is None:
        return ["scheme_options.tree: scheme 'branched' needs scheme_options.tree, got nothing; pass a tree.json "
                "path (from `sharewise branch`) or inline partitions, e.g. [[[0, 1, 2]], [[0, 1], [2]]]"]
    if isinstance(tree, str) and not Path(tree).expanduser().is_file():
        return [f"scheme_options.tree: no tree file at {tree!r}; pass the tree.json written by `sharewise branch`"]
    return []


@register_scheme("branched", check=_check_tree_option)
def build_branched(core: CoreSpec, n_tasks: int, *, seed: int = 0,
                   tree: str | list | dict | None = None) -> Branched:
    """``tree``: path to tree.json, or inline partitions (one list of groups per core depth)."""
    if tree is None:
        raise ConfigError("scheme 'branched' needs scheme_options.tree: a tree.json path (from "
                          "`sharewise branch`) or inline partitions, e.g. [[[0, 1, 2]], [[0, 1], [2]]]")
    partitions, names = load_tree(tree, n_tasks)
    if len(partitions) != core.depth:
        raise ConfigError(f"scheme_options.tree has {len(partitions)} depths but the core has "
                          f"model.core.depth={core.depth} blocks; give one partition per block")
    block_of_layer = [d for d, partition in enumerate(partitions) for _ in partition]  # group order of Branched
    return Branched(core.bank_of_blocks(block_of_layer), partitions, core.dropout, names)


@register_scheme("shared_encoder")
def build_shared_encoder(core: CoreSpec, n_tasks: int, *, seed: int = 0) -> Branched:
    """Every block shared by all tasks (Table 1's "MTL baseline"); equals ``parallel``."""
    shared = [(tuple(range(n_tasks)),)] * core.depth
    return Branched(core.bank_of_blocks(range(core.depth)), shared, core.dropout)
