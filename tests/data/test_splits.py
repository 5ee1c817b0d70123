"""Seeded splits (partition, determinism, stratification) and train-only min-max scaling."""

from __future__ import annotations

import numpy as np
import pytest

from sharewise.data.splits import fixed_split, minmax_scale
from sharewise.errors import DataError


def _is_partition(parts: list[np.ndarray], n: int) -> bool:
    allidx = np.concatenate(parts)
    return len(allidx) == n and np.array_equal(np.sort(allidx), np.arange(n))


def test_plain_split_partition_and_sizes() -> None:
    parts = fixed_split(101, [0.8, 0.2], seed=0)
    assert _is_partition(parts, 101)
    assert [len(p) for p in parts] == [81, 20]
    assert all(np.array_equal(p, np.sort(p)) for p in parts)


def test_deterministic_and_seed_dependent() -> None:
    labels = np.repeat(np.arange(3), [50, 30, 20])
    a = fixed_split(labels, [0.5, 0.2, 0.3], seed=7)
    b = fixed_split(labels, [0.5, 0.2, 0.3], seed=7)
    c = fixed_split(labels, [0.5, 0.2, 0.3], seed=8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_stratified_proportions() -> None:
    labels = np.repeat(np.arange(3), [50, 30, 20])
    train, val, test = fixed_split(labels, [0.5, 0.2, 0.3], seed=1)
    assert _is_partition([train, val, test], 100)
    assert np.bincount(labels[train]).tolist() == [25, 15, 10]
    assert np.bincount(labels[val]).tolist() == [10, 6, 4]
    assert np.bincount(labels[test]).tolist() == [15, 9, 6]


def test_tiny_classes_keep_part_sizes_close() -> None:
    # 10 classes of 1 and one of 90: the singletons cannot be in every part.
    labels = np.concatenate([np.arange(10), np.full(90, 10)])
    parts = fixed_split(labels, [0.8, 0.2], seed=3)
    assert _is_partition(parts, 100)
    assert abs(len(parts[0]) - 80) <= 1 and abs(len(parts[1]) - 20) <= 1
    assert np.sum(labels[parts[1]] == 10) == 18


def test_unstratified_with_labels() -> None:
    labels = np.zeros(10, dtype=int)
    parts = fixed_split(labels, [0.3, 0.7], seed=0, stratify=False)
    assert [len(p) for p in parts] == [3, 7]


@pytest.mark.parametrize(
    ("fractions", "match"),
    [([0.8, 0.3], "sums to 1.1"), ([1.0, 0.0], r"> 0, but got \[1.0, 0.0\]"), ([], "non-empty")],
)
def test_bad_fractions(fractions: list[float], match: str) -> None:
    with pytest.raises(DataError, match=match):
        fixed_split(10, fractions, seed=0)


def test_minmax_scale_train_only() -> None:
    train = np.array([[0.0, 5.0, 2.0], [10.0, 5.0, 4.0]], dtype=np.float32)
    test = np.array([[20.0, 7.0, 3.0]], dtype=np.float32)
    tr, te = minmax_scale(train, test)
    np.testing.assert_allclose(tr, [[0.0, 0.0, 0.0], [1.0, 0.0, 1.0]])
    np.testing.assert_allclose(te, [[2.0, 0.0, 0.5]])  # outside [0, 1]: no fitting on test data
    assert tr.dtype == np.float32


def test_minmax_scale_shape_errors() -> None:
    with pytest.raises(DataError, match=r"shape \[M, 3\] like train, but got \(2, 2\)"):
        minmax_scale(np.zeros((2, 3)), np.zeros((2, 2)))
    with pytest.raises(DataError, match="NaN"):
        minmax_scale(np.array([[np.nan], [1.0]]))
