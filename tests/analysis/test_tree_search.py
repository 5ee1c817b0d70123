"""Tree enumeration, exhaustive search and beam search (paper Sec. 3.2)."""

import itertools

import numpy as np
import pytest

from sharewise.analysis import (
    beam_search,
    enumerate_trees,
    exhaustive_search,
    rdm_stack,
    task_affinity,
    tree_cost,
    tree_params,
    validate_tree,
)
from sharewise.errors import ConfigError


def _random_dissimilarity(n_tasks, depth, seed, k=10):
    """1 - RSA affinity of random single-task 'features' sharing a common component."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(depth, k, 6))
    rdms = {
        t: rdm_stack([base[d] + rng.normal(size=(k, 6)) * rng.uniform(0.3, 2.0) for d in range(depth)])
        for t in range(n_tasks)
    }
    return 1.0 - task_affinity(rdms)  # [D, N, N]


@pytest.mark.parametrize(
    "n_tasks,depth,count",
    [(3, 1, 5), (4, 1, 15), (3, 2, 12), (3, 3, 22), (4, 2, 60)],
)
def test_tree_counts_match_hand_counts(n_tasks, depth, count):
    # N=3, D=2: first partition {012} -> 5 refinements, three {ab}{c} -> 2 each, {0}{1}{2} -> 1:
    # 5 + 6 + 1 = 12. N=3, D=3: middle {012}: 1 * 5, three {ab}{c}: 2 coarsenings * 2
    # refinements, singletons: 5 * 1 -> 5 + 12 + 5 = 22. N=4, D=2: sum over the first
    # partition of prod Bell(|group|) = 15 + 4*5 + 3*4 + 6*2 + 1 = 60.
    trees = list(enumerate_trees(n_tasks, depth))
    assert len(trees) == count
    assert len({tuple(t) for t in trees}) == count  # no duplicates
    for tree in trees:
        validate_tree(tree, n_tasks)


def test_enumerated_trees_match_brute_force_nesting_filter():
    # Independent check: all sequences of 3 partitions of 4 tasks, kept if nested.
    from sharewise.analysis._partitions import canonical, set_partitions

    parts = [canonical(p) for p in set_partitions([0, 1, 2, 3])]

    def refines(child, parent):
        return all(any(set(g) <= set(h) for h in parent) for g in child)

    brute = {
        (a, b, c) for a, b, c in itertools.product(parts, repeat=3) if refines(b, a) and refines(c, b)
    }
    assert {tuple(t) for t in enumerate_trees(4, 3)} == brute


@pytest.mark.parametrize("n_tasks,depth", [(3, 2), (4, 3), (5, 2), (6, 2), (6, 3)])
def test_beam_equals_exhaustive(n_tasks, depth):
    blocks = [50 * (d + 1) for d in range(depth)]
    heads = [7] * n_tasks
    smallest, largest = sum(blocks) + sum(heads), n_tasks * sum(blocks) + sum(heads)
    for seed in range(3):
        dis = _random_dissimilarity(n_tasks, depth, seed)
        for budget in np.linspace(smallest, largest, 4 if n_tasks == 6 and depth == 3 else 6).astype(int):
            best = exhaustive_search(dis, blocks, heads, int(budget))
            found = beam_search(dis, blocks, heads, int(budget), seed=seed)
            assert found[2] == pytest.approx(best[2], abs=1e-12)
            assert found == best  # same tree and params too (same tie-breaking)


def test_exhaustive_result_is_optimal_within_budget_by_brute_force():
    dis = _random_dissimilarity(4, 2, seed=7)
    blocks, heads, budget = [100, 100], [5] * 4, 520
    tree, params, cost = exhaustive_search(dis, blocks, heads, budget)
    assert params == tree_params(tree, blocks, heads) <= budget
    assert cost == pytest.approx(tree_cost(tree, dis))
    feasible = [t for t in enumerate_trees(4, 2) if tree_params(t, blocks, heads) <= budget]
    assert cost == pytest.approx(min(tree_cost(t, dis) for t in feasible))


def test_paper_beam_is_valid_within_budget_and_never_beats_exhaustive():
    for seed in range(3):
        dis = _random_dissimilarity(6, 3, seed)
        blocks, heads = [40, 60, 80], [3] * 6
        for budget in (200, 500, 900):
            tree, params, cost = beam_search(dis, blocks, heads, budget, seed=seed, exact_max_tasks=0)
            validate_tree(tree, 6)
            assert params == tree_params(tree, blocks, heads) <= budget
            assert cost == pytest.approx(tree_cost(tree, dis))
            assert cost >= exhaustive_search(dis, blocks, heads, budget)[2] - 1e-12


def _planted():
    """Tasks {0,1,2} and {3,4,5}: all alike at depth 0, two clusters at depth 1, and at
    depth 2 only {0,1} and {3,4} stay alike."""
    affinity = np.full((3, 6, 6), 0.1)
    affinity[0] = 0.95
    for a, b in itertools.product(range(3), repeat=2):
        affinity[1:, a, b] = affinity[1:, a + 3, b + 3] = 0.9
        affinity[2, a, b] = affinity[2, a + 3, b + 3] = 0.3
    affinity[2, :2, :2] = affinity[2, 3:5, 3:5] = 0.9
    affinity[:, range(6), range(6)] = 1.0
    return 1.0 - affinity


PLANTED = [[(0, 1, 2, 3, 4, 5)], [(0, 1, 2), (3, 4, 5)], [(0, 1), (2,), (3, 4), (5,)]]


@pytest.mark.parametrize("exact_max_tasks", [6, 0])
def test_search_recovers_planted_tree(exact_max_tasks):
    dis = _planted()
    blocks, heads = [100, 100, 100], [10] * 6
    budget = tree_params(PLANTED, blocks, heads)  # 760: exactly the planted tree
    assert exhaustive_search(dis, blocks, heads, budget)[0] == PLANTED
    tree, params, _ = beam_search(dis, blocks, heads, budget, exact_max_tasks=exact_max_tasks)
    assert tree == PLANTED and params == 760


def test_beam_on_many_tasks_is_fast_and_valid():
    # 12 planted clusters-of-3 tasks: far beyond exhaustive search.
    n_tasks, depth = 12, 3
    labels = np.arange(n_tasks) // 3
    affinity = np.where(labels[:, None] == labels[None, :], 0.9, 0.05)
    affinity = np.broadcast_to(affinity, (depth, n_tasks, n_tasks)).copy()
    affinity[0] = 0.9
    dis = 1.0 - affinity
    blocks, heads = [10, 10, 10], [1] * n_tasks
    tree, params, cost = beam_search(dis, blocks, heads, budget=10 + 40 + 40 + 12)
    validate_tree(tree, n_tasks)
    assert params <= 102
    assert tree[1] == tree[2] == [tuple(range(i, i + 3)) for i in range(0, 12, 3)]


def test_budget_below_fully_shared_is_rejected():
    dis = _random_dissimilarity(3, 2, seed=0)
    with pytest.raises(ConfigError, match="budget 100 is below .* needs 330 parameters; raise --budget to at least 330"):
        exhaustive_search(dis, [100, 200], [10, 10, 10], 100)
    with pytest.raises(ConfigError, match="at least 330"):
        beam_search(dis, [100, 200], [10, 10, 10], 100)
    with pytest.raises(ConfigError, match="head_params has 2 entries but the dissimilarity has N=3"):
        beam_search(dis, [100, 200], [10, 10], 1000)
