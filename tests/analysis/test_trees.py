"""Tree validation, parameter count, clustering cost and JSON form (paper Sec. 3.2)."""

import json

import numpy as np
import pytest

from sharewise.analysis import tree_cost, tree_from_dict, tree_params, tree_to_dict, validate_tree
from sharewise.errors import ConfigError

TASKS = ["seg", "depth", "normals", "edges"]
TREE = [[["seg", "depth", "normals", "edges"]], [["seg", "depth"], ["normals", "edges"]],
        [["seg"], ["depth"], ["normals", "edges"]]]


def test_validate_accepts_names_and_indices():
    validate_tree(TREE, TASKS)
    validate_tree([[(0, 1, 2, 3)], [(0, 1), (2,), (3,)]], 4)


def test_validate_rejects_non_nested_tree():
    with pytest.raises(ConfigError, match=r"group \['depth', 'normals'\] at depth 1 spans"):
        validate_tree([[["seg", "depth"], ["normals", "edges"]], [["seg"], ["depth", "normals"], ["edges"]]], TASKS)


def test_validate_rejects_missing_duplicated_and_unknown_tasks():
    with pytest.raises(ConfigError, match=r"tasks \['edges'\] are missing and \['seg'\] are duplicated"):
        validate_tree([[["seg", "depth"], ["normals", "seg"]]], TASKS)
    with pytest.raises(ConfigError, match="unknown task 'sky'"):
        validate_tree([[["seg", "depth", "normals", "sky"]]], TASKS)


def test_params_counts_one_block_copy_per_group():
    # depth 0: 1 group x 100, depth 1: 2 x 50, depth 2: 3 x 20, heads 1+2+3+4
    assert tree_params(TREE, [100, 50, 20], [1, 2, 3, 4]) == 100 + 100 + 60 + 10
    assert tree_params(TREE, [100, 50, 20], dict(zip(TASKS, [1, 2, 3, 4]))) == 270
    with pytest.raises(ConfigError, match="block_params has 2 entries but the tree has 3"):
        tree_params(TREE, [100, 50], [1, 2, 3, 4])


def test_cost_by_hand():
    dis = np.zeros((3, 4, 4))
    dis[0] = [[0, .2, .4, .3], [.2, 0, .1, .5], [.4, .1, 0, .6], [.3, .5, .6, 0]]
    dis[1] = 0.5 * dis[0]
    dis[2] = 0.9 * dis[0]
    # depth 0: one group, max .6; depth 1: {0,1} .1, {2,3} .3 -> mean .2;
    # depth 2: {0}, {1}, {2,3} .54 -> mean .18
    assert tree_cost(TREE, dis, TASKS) == pytest.approx(0.6 + 0.2 + 0.18)


def test_splitting_can_raise_the_cost():
    dis = np.ones((1, 5, 5)) - np.eye(5)
    assert tree_cost([[(0, 1, 2, 3), (4,)]], dis) == pytest.approx(1 / 2)
    assert tree_cost([[(0, 1), (2, 3), (4,)]], dis) == pytest.approx(2 / 3)


def test_json_round_trip():
    dis = np.random.default_rng(0).random((3, 4, 4))
    data = json.loads(json.dumps(tree_to_dict(TREE, TASKS, [100, 50, 20], [1, 2, 3, 4], dis)))
    assert data["params"] == 270
    assert data["cost"] == pytest.approx(tree_cost(TREE, dis, TASKS))
    assert data["partitions"][1] == [["seg", "depth"], ["normals", "edges"]]
    assert tree_from_dict(data, TASKS) == [[tuple(g) for g in p] for p in TREE]
    with pytest.raises(ConfigError, match="'partitions' key"):
        tree_from_dict({"params": 3})
