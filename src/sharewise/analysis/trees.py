"""Branched multi-task trees as plain data: validation, parameter count, clustering cost, JSON.

Branched multi-task networks, Sec. 3.2: the shared encoder has ``D`` blocks; block ``d`` is a
node at depth ``d`` of a tree whose leaves are the task-specific decoders. Here a tree is a list
of partitions of the tasks, one per depth ``d = 0 .. D-1`` (depth 0 is the first block, nearest
the input). Each group of a partition is one branch (one copy of block ``d``) shared by the tasks
in the group, and every partition must refine the previous one: a branch never re-merges.

Groups may name tasks by name or by index; the functions here normalise to indices.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from sharewise.analysis._arrays import as_float64
from sharewise.analysis._partitions import Partition, canonical
from sharewise.errors import ConfigError

Tree = Sequence[Sequence[Sequence[Hashable]]]


def _task_names(tasks: Sequence[Hashable] | int) -> list[Hashable]:
    if isinstance(tasks, int):
        if tasks < 1:
            raise ConfigError(f"the number of tasks must be at least 1, but got {tasks}.")
        return list(range(tasks))
    names = list(tasks)
    if len(set(names)) != len(names) or not names:
        raise ConfigError(
            f"tasks must be a non-empty list of distinct names, but got {names!r}; "
            f"remove the duplicates."
        )
    return names


def normalise_tree(partitions: Tree, tasks: Sequence[Hashable] | int) -> list[Partition]:
    """Validate a tree and return it in canonical index form (see :func:`validate_tree`)."""
    names = _task_names(tasks)
    index_of = {name: i for i, name in enumerate(names)}
    if len(partitions) == 0:
        raise ConfigError(
            "the tree has no partitions; give one partition of the tasks per encoder depth."
        )
    result: list[Partition] = []
    for d, partition in enumerate(partitions):
        groups: list[tuple[int, ...]] = []
        for group in partition:
            if isinstance(group, (str, bytes)) or not isinstance(group, Sequence):
                raise ConfigError(
                    f"depth {d}: group {group!r} is not a list of tasks; write each group as a "
                    f"list, e.g. [[\"a\", \"b\"], [\"c\"]]."
                )
            if len(group) == 0:
                raise ConfigError(f"depth {d} has an empty group; remove it.")
            indices = []
            for task in group:
                if task in index_of:
                    indices.append(index_of[task])
                elif isinstance(task, (int, np.integer)) and 0 <= int(task) < len(names):
                    indices.append(int(task))
                else:
                    raise ConfigError(
                        f"depth {d}: unknown task {task!r}; valid tasks are {names!r} "
                        f"(or indices 0..{len(names) - 1})."
                    )
            groups.append(tuple(indices))
        flat = sorted(i for g in groups for i in g)
        if flat != list(range(len(names))):
            missing = [names[i] for i in range(len(names)) if i not in flat]
            duplicated = sorted({names[i] for i in flat if flat.count(i) > 1}, key=str)
            raise ConfigError(
                f"depth {d}: the groups {partition!r} must contain every task exactly once, "
                f"but tasks {missing!r} are missing and {duplicated!r} are duplicated; "
                f"assign each of {names!r} to exactly one group."
            )
        current = canonical(groups)
        if result:
            parent_of = {i: g for g in result[-1] for i in g}
            for group in current:
                if not set(group) <= set(parent_of[group[0]]):
                    raise ConfigError(
                        f"the tree is not nested: group {[names[i] for i in group]!r} at depth "
                        f"{d} spans several groups of depth {d - 1} "
                        f"({[[names[i] for i in g] for g in result[-1]]!r}); a branch cannot "
                        f"re-merge, so split it along the groups of depth {d - 1}."
                    )
        result.append(current)
    return result


def validate_tree(partitions: Tree, tasks: Sequence[Hashable] | int) -> None:
    """Raise :class:`ConfigError` unless ``partitions`` is a valid tree over ``tasks``.

    Valid means (Sec. 3.2): every depth partitions the tasks (each task exactly once, no empty
    group) and every group at depth ``d`` lies inside one group at depth ``d - 1``.

    Args:
        partitions: ``D`` partitions, each a list of groups of task names or indices.
        tasks: the task names in order, or the number of tasks ``N`` (names ``0 .. N-1``).
    """
    normalise_tree(partitions, tasks)


def _head_total(head_params: Sequence[int] | Mapping[Hashable, int]) -> int:
    values = list(head_params.values()) if isinstance(head_params, Mapping) else list(head_params)
    if any(int(v) != v or v < 0 for v in values):
        raise ConfigError(
            f"head_params must be non-negative integers, but got {values!r}; pass each task "
            f"decoder's parameter count."
        )
    return int(sum(values))


def check_block_params(block_params: Sequence[int], depth: int) -> list[int]:
    """Return ``block_params`` as ints after checking one non-negative count per depth."""
    values = list(block_params)
    if len(values) != depth:
        raise ConfigError(
            f"block_params has {len(values)} entries but the tree has {depth} depths; give one "
            f"parameter count per encoder block."
        )
    if any(int(v) != v or v < 0 for v in values):
        raise ConfigError(
            f"block_params must be non-negative integers, but got {values!r}; pass each "
            f"encoder block's parameter count."
        )
    return [int(v) for v in values]


def tree_params(
    partitions: Tree,
    block_params: Sequence[int],
    head_params: Sequence[int] | Mapping[Hashable, int],
) -> int:
    """Parameter count of a branched network: ``sum_d groups(d) * block_params[d] + sum(heads)``.

    This is the computational budget ``C`` of Sec. 3 (number of parameters): every group at
    depth ``d`` holds its own copy of block ``d``; each task has one decoder.

    Args:
        partitions: the tree (``D`` partitions); its nesting is not re-checked here.
        block_params: ``D`` parameter counts, one per encoder block.
        head_params: the task decoders' parameter counts (a sequence or task -> count).
    """
    blocks = check_block_params(block_params, len(partitions))
    return int(sum(len(p) * b for p, b in zip(partitions, blocks))) + _head_total(head_params)


def check_dissimilarity(dissimilarity: Any) -> np.ndarray:
    """Return the task dissimilarity ``[D, N, N]`` as float64 after checking its shape."""
    array = as_float64(dissimilarity, "dissimilarity")
    if array.ndim != 3 or array.shape[1] != array.shape[2]:
        raise ConfigError(
            f"dissimilarity must have shape [D, N, N] (1 - task_affinity(...)), but got "
            f"{tuple(array.shape)}."
        )
    return array


def group_cost(dissimilarity: np.ndarray, depth: int, group: Sequence[int]) -> float:
    """Maximum pairwise dissimilarity within a group at one depth; 0 for a singleton."""
    if len(group) < 2:
        return 0.0
    idx = np.asarray(group)
    return float(dissimilarity[depth][np.ix_(idx, idx)].max())  # [g, g] -> scalar


def tree_cost(
    partitions: Tree, dissimilarity: Any, tasks: Sequence[Hashable] | None = None
) -> float:
    """Clustering cost ``C_cluster = sum_d mean_{groups g at d} max_{i,j in g} Dis[d, i, j]``.

    Sec. 3.2 of the paper ("averaging the maximum distance ... in every cluster", summed over
    depths); singletons cost 0 and still count in the mean over groups. Note that, because of
    the mean, splitting a group can *raise* the cost (e.g. groups {a,b,c,d} and {e} with
    Dis(a,b) = Dis(c,d) = 1 cost 1/2; splitting into {a,b}, {c,d}, {e} costs 2/3), so the
    cheapest tree is not always the most split one.

    Args:
        partitions: the tree, ``D`` partitions of task indices (or names when ``tasks`` given).
        dissimilarity: ``[D, N, N]``, ``1 - task_affinity(...)`` (Alg. 1 line 7).
        tasks: task names, if the groups use names.
    """
    dis = check_dissimilarity(dissimilarity)
    depth, n_tasks, _ = dis.shape
    tree = normalise_tree(partitions, tasks if tasks is not None else n_tasks)
    if len(tree) != depth:
        raise ConfigError(
            f"the tree has {len(tree)} depths but the dissimilarity has D={depth} locations; "
            f"give one partition per location."
        )
    return float(
        sum(np.mean([group_cost(dis, d, g) for g in partition]) for d, partition in enumerate(tree))
    )


def tree_to_dict(
    partitions: Tree,
    tasks: Sequence[str],
    block_params: Sequence[int],
    head_params: Sequence[int] | Mapping[Hashable, int],
    dissimilarity: Any,
) -> dict[str, Any]:
    """JSON form ``{"partitions": [[[names, ...], ...] per depth], "params": int, "cost": float}``.

    This is the plain data saved in a run directory from which ``sharing/branched.py`` builds
    the network; params and cost are recomputed here so they always match the partitions.
    """
    names = _task_names(tasks)
    tree = normalise_tree(partitions, names)
    return {
        "partitions": [[[names[i] for i in g] for g in p] for p in tree],
        "params": tree_params(tree, block_params, head_params),
        "cost": tree_cost(tree, dissimilarity),
    }


def tree_from_dict(
    data: Mapping[str, Any], tasks: Sequence[str] | None = None
) -> list[list[tuple[str, ...]]]:
    """Read the partitions of :func:`tree_to_dict`'s JSON form, validated, with task names.

    Args:
        data: the mapping (as loaded from JSON); ``params`` and ``cost`` are optional.
        tasks: if given, the tree must cover exactly these tasks.
    """
    if not isinstance(data, Mapping) or "partitions" not in data:
        raise ConfigError(
            f"a tree must be a mapping with a 'partitions' key, but got {data!r}; write it with "
            f"tree_to_dict()."
        )
    partitions = data["partitions"]
    if not isinstance(partitions, Sequence) or not partitions or not partitions[0]:
        raise ConfigError(
            f"tree 'partitions' must be a non-empty list of partitions, but got {partitions!r}."
        )
    names = list(tasks) if tasks is not None else [t for g in partitions[0] for t in g]
    tree = normalise_tree(partitions, names)
    return [[tuple(names[i] for i in g) for g in p] for p in tree]
