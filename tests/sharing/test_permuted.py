"""Permuted ordering's orders (Eqs. 3-4): distinct per task, seeded, explicit orders validated;
the identity candidate's shape check."""

from __future__ import annotations

import math

import pytest
import torch

from sharewise.components.conv import ConvPoolLayer
from sharewise.components.layer_bank import DenseLayerBank, ModuleLayerBank
from sharewise.errors import ConfigError, ShapeError
from sharewise.sharing import CoreSpec, create_scheme


def dense_core(depth: int, width: int = 4) -> CoreSpec:
    return CoreSpec(make_bank=lambda n: DenseLayerBank(n, width), depth=depth, feature_shape=(width,))


def orders(n_tasks: int, depth: int, seed: int, **options) -> list[tuple[int, ...]]:
    scheme = create_scheme("permuted", dense_core(depth), n_tasks, seed=seed, options=options or None)
    return [tuple(r) for r in scheme.permutations.tolist()]


@pytest.mark.parametrize(("n_tasks", "depth"), [(2, 2), (3, 3), (6, 3)])
def test_every_seed_gives_every_task_a_different_order(n_tasks: int, depth: int) -> None:
    for seed in range(200):
        drawn = orders(n_tasks, depth, seed)
        assert len(set(drawn)) == n_tasks, f"seed {seed}: {drawn}"
        assert all(sorted(r) == list(range(depth)) for r in drawn)


def test_two_tasks_two_layers_are_eq4s_two_orders() -> None:
    # Eq. 4: one task uses W2∘W1 (layer 0 first), the other W1∘W2 (layer 1 first).
    for seed in range(20):
        assert sorted(orders(2, 2, seed)) == [(0, 1), (1, 0)]


def test_more_tasks_than_orders_use_every_order_before_repeating() -> None:
    for seed in range(20):
        drawn = orders(14, 3, seed)  # 3! = 6: rounds of 6, 6, 2
        assert len(set(drawn[:6])) == 6 and len(set(drawn[6:12])) == 6
        assert len(set(drawn[12:])) == 2


def test_large_depth_draws_distinct_orders() -> None:
    drawn = orders(50, 8, seed=3)  # 8! = 40320: rejection sampling path
    assert len(set(drawn)) == 50 and all(sorted(r) == list(range(8)) for r in drawn)


def test_orders_are_seeded() -> None:
    assert orders(4, 4, 5) == orders(4, 4, 5)
    assert any(orders(4, 4, 5) != orders(4, 4, s) for s in range(6, 10))
    # Every seed's draw is one of the 4! orders; across seeds the first task's order varies.
    assert len({orders(4, 4, s)[0] for s in range(50)}) > math.factorial(4) // 2


def test_explicit_orders_are_used() -> None:
    scheme = create_scheme("permuted", dense_core(3), 3, options={"orders": [[2, 0, 1], [0, 1, 2], [2, 0, 1]]})
    assert scheme.permutations.tolist() == [[2, 0, 1], [0, 1, 2], [2, 0, 1]]
    assert scheme.learned_structure() == {"permutations": [[2, 0, 1], [0, 1, 2], [2, 0, 1]]}


@pytest.mark.parametrize(("bad", "match"), [
    ([[0, 1, 2], [0, 0, 2], [1, 2, 0]], r"row 1 \(task 1\) must be a permutation of 0\.\.2.*got \[0, 0, 2\]"),
    ([[0, 1, 2], [1, 2, 0], [0, 1]], r"row 2 \(task 2\).*got \[0, 1\]"),
    ([[0, 1, 2], [1, 2, 0]], r"list of 3 rows.*got 2 rows"),
    ([[0, 1, 3], [1, 2, 0], [2, 0, 1]], r"row 0 .*got \[0, 1, 3\]"),
])
def test_bad_orders_name_the_row(bad: list[list[int]], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        create_scheme("permuted", dense_core(3), 3, options={"orders": bad})


def test_identity_candidate_on_a_pooled_conv_core_is_a_shape_error() -> None:
    core = CoreSpec(make_bank=lambda n: ModuleLayerBank([ConvPoolLayer(4, 3, pool=True) for _ in range(n)]),
                    depth=2, feature_shape=(4, 8, 8))
    with pytest.raises(ShapeError, match=r"identity: true.*depth 0 the identity gives \[4, 8, 8\] while the "
                                         r"core layers give \[4, 4, 4\]"):
        create_scheme("soft_ordering", core, 2, options={"identity": True})
    create_scheme("soft_ordering", core, 2)  # without the identity candidate, pooling is fine
    unpooled = CoreSpec(make_bank=lambda n: ModuleLayerBank([ConvPoolLayer(4, 3, pool=False) for _ in range(n)]),
                        depth=2, feature_shape=(4, 8, 8))
    scheme = create_scheme("soft_ordering", unpooled, 2, options={"identity": True})
    assert scheme(torch.randn(2, 3, 4, 8, 8)).shape == (2, 3, 4, 8, 8)
