"""Search for the branched tree of least clustering cost within a parameter budget.

Branched multi-task networks, Sec. 3.2 and Alg. 1 line 8: among all trees (nested partitions of
the tasks, one per encoder depth) whose parameter count fits the budget ``C``, return the one
with the smallest task clustering cost (:func:`sharewise.analysis.trees.tree_cost`). For few
tasks every tree is enumerated (:func:`exhaustive_search`); for many tasks the paper proposes a
beam search built with spectral clustering (:func:`beam_search`).

Trees are returned in index form: a list of ``D`` partitions (depth 0 nearest the input), each
a list of sorted tuples of task indices.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from sharewise.analysis._partitions import (
    Partition,
    canonical,
    coarsenings,
    refinements,
    set_partitions,
)
from sharewise.analysis.trees import (
    _head_total,
    check_block_params,
    check_dissimilarity,
    group_cost,
)
from sharewise.errors import ConfigError

SearchResult = tuple[list[list[tuple[int, ...]]], int, float]
# Costs are compared after rounding so that sums taken in a different order tie exactly.
_DECIMALS = 12


def enumerate_trees(n_tasks: int, depth: int) -> Iterator[list[tuple[tuple[int, ...], ...]]]:
    """Every tree over ``n_tasks`` tasks with ``depth`` levels, in a fixed order (Sec. 3.2).

    A tree is a sequence of set partitions, each refining the previous one; the first
    partition (depth 0) may already split the tasks. For ``depth = 1`` there are Bell(N) trees.
    """
    if n_tasks < 1 or depth < 1:
        raise ConfigError(
            f"enumerate_trees needs at least one task and one depth, but got n_tasks={n_tasks}, "
            f"depth={depth}."
        )

    def extend(prefix: list[Partition]) -> Iterator[list[Partition]]:
        if len(prefix) == depth:
            yield list(prefix)
            return
        for child in refinements(prefix[-1]):
            yield from extend([*prefix, child])

    for first in set_partitions(list(range(n_tasks))):
        yield from extend([canonical(first)])


def _prepare(
    dissimilarity: Any,
    block_params: Sequence[int],
    head_params: Sequence[int] | Mapping[Hashable, int],
    budget: int,
) -> tuple[np.ndarray, list[int], int]:
    """Check the search inputs; return (dissimilarity [D, N, N], block params, head total)."""
    dis = check_dissimilarity(dissimilarity)
    blocks = check_block_params(block_params, dis.shape[0])
    heads = _head_total(head_params)
    n_heads = len(head_params)
    if n_heads != dis.shape[1]:
        raise ConfigError(
            f"head_params has {n_heads} entries but the dissimilarity has N={dis.shape[1]} "
            f"tasks; give one decoder parameter count per task."
        )
    smallest = sum(blocks) + heads
    if budget < smallest:
        raise ConfigError(
            f"budget {budget} is below the smallest possible tree (fully shared) which needs "
            f"{smallest} parameters; raise --budget to at least {smallest}."
        )
    return dis, blocks, heads


class _Costs:
    """Memoised ``mean over groups of max pairwise dissimilarity`` per (depth, partition)."""

    def __init__(self, dis: np.ndarray) -> None:
        self.dis = dis
        self._group: dict[tuple[int, tuple[int, ...]], float] = {}
        self._partition: dict[tuple[int, Partition], float] = {}

    def group(self, depth: int, group: tuple[int, ...]) -> float:
        key = (depth, group)
        if key not in self._group:
            self._group[key] = group_cost(self.dis, depth, group)
        return self._group[key]

    def partition(self, depth: int, partition: Partition) -> float:
        key = (depth, partition)
        if key not in self._partition:
            costs = [self.group(depth, g) for g in partition]
            self._partition[key] = sum(costs) / len(costs)
        return self._partition[key]


def _result(
    tree: Sequence[Partition], blocks: list[int], heads: int, costs: _Costs
) -> SearchResult:
    params = sum(len(p) * b for p, b in zip(tree, blocks)) + heads
    cost = sum(costs.partition(d, p) for d, p in enumerate(tree))
    return [list(p) for p in tree], int(params), float(cost)


def exhaustive_search(
    dissimilarity: Any,
    block_params: Sequence[int],
    head_params: Sequence[int] | Mapping[Hashable, int],
    budget: int,
) -> SearchResult:
    """The tree of least clustering cost with at most ``budget`` parameters, by enumeration.

    Sec. 3.2: "we can enumerate all possible trees that fall within the given computational
    budget C. Finally, we select the tree that minimizes the task dissimilarity score."
    Ties are broken by fewer parameters, then by the lexicographic order of the canonical
    partitions (depth 0 first), so the result is deterministic. The number of trees grows
    super-exponentially; use this for up to about 6 tasks and 3 depths.

    Args:
        dissimilarity: ``[D, N, N]`` task dissimilarity, ``1 - task_affinity(...)``.
        block_params: ``D`` parameter counts, one per encoder block.
        head_params: ``N`` decoder parameter counts (sequence, or task -> count in task order).
        budget: the largest allowed parameter count ``C``.

    Returns:
        ``(partitions, params, cost)`` of the best tree.
    """
    dis, blocks, heads = _prepare(dissimilarity, block_params, head_params, budget)
    depth, n_tasks, _ = dis.shape
    costs = _Costs(dis)
    best_key: tuple[float, int, tuple[Partition, ...]] | None = None
    for tree in enumerate_trees(n_tasks, depth):
        params = sum(len(p) * b for p, b in zip(tree, blocks)) + heads
        if params > budget:
            continue
        cost = sum(costs.partition(d, p) for d, p in enumerate(tree))
        key = (round(cost, _DECIMALS), params, tuple(tree))
        if best_key is None or key < best_key:
            best_key = key
    assert best_key is not None  # the fully shared tree always fits after _prepare
    return _result(best_key[2], blocks, heads, costs)


def _spectral_coarsenings(
    dis: np.ndarray, depth: int, partition: Partition, seed: int
) -> set[Partition]:
    """Coarsenings of ``partition`` found by spectral clustering of its groups at ``depth``.

    The groups of the deeper partition are the items to cluster, so every candidate nests with
    it. Group affinity is ``1 - max`` dissimilarity over task pairs across the two groups
    (complete linkage, matching the max in the cost), clipped to ``>= 0`` with ``1e-6`` added
    so that the affinity graph stays connected. One clustering per group count ``m``.
    """
    k = len(partition)
    candidates = {canonical([sum(partition, ())]), partition}  # m = 1 and m = k
    if k <= 2:
        return candidates
    affinity = np.empty((k, k))  # [k, k] between groups
    for a in range(k):
        for b in range(k):
            cross = dis[depth][np.ix_(partition[a], partition[b])]  # [|g_a|, |g_b|]
            affinity[a, b] = 1.0 - cross.max()
    affinity = np.clip(affinity, 0.0, None) + 1e-6
    np.fill_diagonal(affinity, 1.0)
    from sklearn.cluster import SpectralClustering  # ~0.7 s to import; only the beam search needs it

    for m in range(2, k):
        model = SpectralClustering(
            n_clusters=m, affinity="precomputed", random_state=seed, assign_labels="cluster_qr"
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "graph is not fully connected" on planted data
            labels = model.fit_predict(affinity)  # [k]
        merged = [
            sum((partition[a] for a in range(k) if labels[a] == label), ())
            for label in np.unique(labels)
        ]
        candidates.add(canonical(merged))
    return candidates


def beam_search(
    dissimilarity: Any,
    block_params: Sequence[int],
    head_params: Sequence[int] | Mapping[Hashable, int],
    budget: int,
    beam: int = 10,
    seed: int = 0,
    exact_max_tasks: int = 6,
) -> SearchResult:
    """Top-down beam search for the tree of least cost within the budget (Sec. 3.2, last par.).

    What is implemented. The tree is built from the deepest block (depth ``D-1``) towards the
    input. A partial tree holds the partitions of depths ``d .. D-1``. At depth ``d`` each
    partial tree is extended by partitions of depth ``d`` that its depth ``d+1`` partition
    refines (for ``d = D-1``: any partition of the tasks), i.e. by *merging* its groups, so
    nesting holds by construction. The candidates come from spectral clustering
    (``SpectralClustering(affinity="precomputed")``) of the deeper groups on the depth-``d``
    affinity, once for every group count ``m`` from 1 to the number of deeper groups, as in the
    paper. Extensions that can no longer fit the budget (even fully shared above ``d``) are
    dropped; of several partial trees ending in the same partition, dominated ones (no fewer
    parameters and no lower cost) are dropped, which loses nothing because what can follow
    depends only on that partition and the parameters left. The ``beam`` best partial trees
    are kept, ranked by partial cost plus the cost of the cheapest simple completion that fits
    the budget (fully shared up to some depth, then the current partition up to ``d``), then
    fewer parameters; this makes the ranking budget-aware, since the cheapest partial trees
    are otherwise the ones that spend the budget deep and force full sharing above.
    The final tree is chosen as in :func:`exhaustive_search`, with the same tie-breaking.

    Deviations from the paper, made so that small problems are solved exactly:

    * if the deeper partition has at most ``exact_max_tasks`` groups, *every* merge of its
      groups is a candidate (Bell(k) of them, a superset of the spectral clusterings, which
      are then not run);
    * if there are at most ``exact_max_tasks`` tasks, the beam is not truncated (only
      infeasible and dominated partial trees are dropped). The search is then a dynamic
      programme over partitions and returns exactly the tree of :func:`exhaustive_search`.
      Set ``exact_max_tasks=0`` for the paper's pure spectral beam search.

    The paper ranks by the cost of the partial tree alone and leaves open how the budget is
    accounted for; the completion estimate and the budget check above are our choices.
    Without the exact mode the search is a heuristic: on random 4-6 task problems with weak
    affinities (|A| < 0.5) the pure spectral beam missed the optimum in about half the cases,
    because clipped weak affinities give spectral clustering little to separate; on clearly
    clustered affinities (the setting of the paper) it recovers the planted tree.

    Args:
        dissimilarity: ``[D, N, N]`` task dissimilarity, ``1 - task_affinity(...)``.
        block_params: ``D`` parameter counts, one per encoder block.
        head_params: ``N`` decoder parameter counts.
        budget: the largest allowed parameter count ``C``.
        beam: the number ``n`` of partial trees kept per depth (paper: 10).
        seed: random state of the spectral clustering (its eigensolver start vector). Labels are
            assigned with ``cluster_qr`` (deterministic and ~100x faster than k-means here).
        exact_max_tasks: see the deviations above.

    Returns:
        ``(partitions, params, cost)`` of the best tree found.
    """
    if beam < 1:
        raise ConfigError(f"beam must be at least 1, but got {beam}; the paper uses 10.")
    dis, blocks, heads = _prepare(dissimilarity, block_params, head_params, budget)
    depth, n_tasks, _ = dis.shape
    costs = _Costs(dis)
    exact = n_tasks <= exact_max_tasks
    spectral: dict[tuple[int, Partition], set[Partition]] = {}

    def _completion_cost(partition: Partition, d: int, left: int) -> float:
        # Cheapest feasible completion of the simple form "fully shared at depths < e, this
        # partition at depths e .. d-1"; e = d (fully shared above d) always fits.
        shared = [costs.partition(e, (tuple(range(n_tasks)),)) for e in range(d)]
        own = [costs.partition(e, partition) for e in range(d)]
        best = float("inf")
        for e in range(d + 1):
            params = sum(blocks[:e]) + len(partition) * sum(blocks[e:d])
            if params <= left:
                best = min(best, sum(shared[:e]) + sum(own[e:]))
        return best

    # A partial tree: (partitions of depths d..D-1 in depth order, block params used, cost).
    leaves: Partition = tuple((i,) for i in range(n_tasks))
    states: list[tuple[tuple[Partition, ...], int, float]] = [((), 0, 0.0)]
    for d in range(depth - 1, -1, -1):
        still_needed = sum(blocks[:d]) + heads  # shallower blocks, fully shared, and heads
        by_partition: dict[Partition, list[tuple[tuple[Partition, ...], int, float]]] = {}
        for path, used, cost in states:
            deeper = path[0] if path else leaves
            if len(deeper) <= exact_max_tasks:
                candidates = set(coarsenings(deeper))  # includes every spectral clustering
            else:
                if (d, deeper) not in spectral:
                    spectral[(d, deeper)] = _spectral_coarsenings(dis, d, deeper, seed)
                candidates = spectral[(d, deeper)]
            for partition in candidates:
                new_used = used + len(partition) * blocks[d]
                if new_used + still_needed > budget:
                    continue
                new = ((partition, *path), new_used, cost + costs.partition(d, partition))
                by_partition.setdefault(partition, []).append(new)
        states = []
        for group in by_partition.values():
            # Pareto front in (params, cost); ties go to the lexicographically first path.
            group.sort(key=lambda s: (s[1], round(s[2], _DECIMALS), s[0]))
            best_cost = float("inf")
            for state in group:
                if round(state[2], _DECIMALS) < best_cost:
                    states.append(state)
                    best_cost = round(state[2], _DECIMALS)
        if not exact and len(states) > beam:

            def rank(state: tuple[tuple[Partition, ...], int, float]) -> tuple[Any, ...]:
                estimate = _completion_cost(state[0][0], d, budget - heads - state[1])
                return (round(state[2] + estimate, _DECIMALS), state[1], state[0])

            states = sorted(states, key=rank)[:beam]
    best = min(states, key=lambda s: (round(s[2], _DECIMALS), s[1], s[0]))
    return _result(best[0], blocks, heads, costs)


def best_tree(data: Mapping[str, Any], budget: int, beam: int | None = None) -> dict[str, Any]:
    """``tree.json``'s content: the tree of least cost within ``budget`` parameters, from an
    affinity file's data (``tasks``, ``affinity`` [D, N, N], ``block_params``, ``head_params``,
    optional ``shared_params``): exhaustive search for <= 6 tasks unless ``beam`` is given, else
    beam search of width ``beam`` (default 10) (Branched multi-task networks, Sec. 3.3)."""
    from sharewise.analysis.trees import tree_to_dict

    tasks = list(data["tasks"])
    dis = 1.0 - np.asarray(data["affinity"], dtype=float)  # [D, N, N]
    heads = [data["head_params"][t] for t in tasks]
    shared = int(data.get("shared_params", 0))  # modules every task uses, in every tree (a shared encoder)
    if beam is None and len(tasks) <= 6:
        parts, _, _ = exhaustive_search(dis, data["block_params"], heads, budget - shared)
        method = "exhaustive"
    else:
        parts, _, _ = beam_search(dis, data["block_params"], heads, budget - shared, beam=beam or 10)
        method = f"beam (n={beam or 10})"
    tree = tree_to_dict(parts, tasks, data["block_params"], heads, dis)
    tree["params"] += shared
    return {**tree, "tasks": tasks, "budget": budget, "search": method, "shared_params": shared}
