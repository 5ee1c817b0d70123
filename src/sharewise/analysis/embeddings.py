"""Task embeddings from Gumbel-Matrix allocations: which tasks use which modules.

A task's embedding concatenates its binary allocation over the ``C`` components of each of the
``L`` layers (the allocation matrix of Gumbel-Matrix routing, Maziarz et al.), so tasks routed
through the same modules have the same or similar embeddings; comparing them by cosine shows
which tasks the learnt routing treats as related.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from sharewise.analysis._arrays import as_float64
from sharewise.errors import ConfigError


def task_embeddings(allocations: Mapping[Hashable, Sequence[Sequence[int]]]) -> np.ndarray:
    """Stack each task's binary allocation, flattened layer by layer: ``[T, L*C]``.

    Args:
        allocations: task -> ``L`` lists of 0/1 flags (which components of each layer the task
            uses). Every task must have the same number of layers and the same number of
            components per layer (layers may differ from one another).

    Returns:
        ``[T, sum_l C_l]`` float64 array of 0s and 1s, rows in the mapping's task order.
    """
    if len(allocations) == 0:
        raise ConfigError("allocations is empty; give one allocation per task.")
    layouts = {task: [len(layer) for layer in alloc] for task, alloc in allocations.items()}
    reference_task, reference = next(iter(layouts.items()))
    for task, layout in layouts.items():
        if layout != reference:
            raise ConfigError(
                f"task {task!r} has components per layer {layout} but task {reference_task!r} "
                f"has {reference}; every task needs an allocation over the same layers."
            )
    rows = []
    for task, alloc in allocations.items():
        flat = as_float64([v for layer in alloc for v in layer], f"allocations[{task!r}]")
        if not np.all((flat == 0) | (flat == 1)):
            raise ConfigError(
                f"allocations[{task!r}] must contain only 0 and 1, but got "
                f"{sorted(set(flat.tolist()))}; threshold or sample the allocation first."
            )
        rows.append(flat)
    return np.stack(rows)  # [T, L*C]


def cosine_similarity_matrix(emb: Any) -> np.ndarray:
    """Cosine similarity of every pair of rows: ``[T, D] -> [T, T]``.

    A zero row (a task that uses no module) has no direction; its similarity with every row,
    itself included, is defined as 0 (``sklearn.metrics.pairwise.cosine_similarity`` gives
    the same off the diagonal).
    """
    array = as_float64(emb, "emb")
    if array.ndim != 2:
        raise ConfigError(f"emb must have shape [T, D], but got {tuple(array.shape)}.")
    norms = np.linalg.norm(array, axis=1, keepdims=True)  # [T, 1]
    unit = np.divide(array, norms, out=np.zeros_like(array), where=norms > 0)  # [T, D]
    return np.clip(unit @ unit.T, -1.0, 1.0)  # [T, T]


def identical_embedding_clusters(emb: Any, names: Sequence[Hashable]) -> list[list[Hashable]]:
    """Group tasks whose embeddings are exactly equal (same modules in every layer).

    Every task appears in exactly one cluster, singletons included; clusters are ordered by
    their first task, and tasks within a cluster follow ``names``.
    """
    array = as_float64(emb, "emb")
    if array.ndim != 2 or array.shape[0] != len(names):
        raise ConfigError(
            f"emb must have shape [T, D] with T = len(names) = {len(names)}, but got "
            f"{tuple(array.shape)}; pass one embedding row per task name."
        )
    clusters: dict[bytes, list[Hashable]] = {}
    for name, row in zip(names, array):
        clusters.setdefault(row.tobytes(), []).append(name)
    return list(clusters.values())
