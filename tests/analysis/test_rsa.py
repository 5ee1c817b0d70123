"""RSA against numpy.corrcoef and scipy.stats.spearmanr (paper Sec. 3.1)."""

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from sharewise.analysis import rdm_stack, representation_dissimilarity, task_affinity
from sharewise.errors import ConfigError


@pytest.mark.parametrize("shape", [(5, 3), (8, 4, 2), (12, 3, 2, 2), (4, 50)])
def test_rdm_equals_one_minus_corrcoef(shape):
    rng = np.random.default_rng(sum(shape))
    features = rng.normal(size=shape)
    expected = 1.0 - np.corrcoef(features.reshape(shape[0], -1))
    np.fill_diagonal(expected, 0.0)
    rdm = representation_dissimilarity(features)
    assert rdm.dtype == np.float64 and rdm.shape == (shape[0], shape[0])
    np.testing.assert_allclose(rdm, expected, atol=1e-12)
    np.testing.assert_array_equal(rdm, rdm.T)


def test_rdm_accepts_tensors_with_grad_and_does_not_centre_across_inputs():
    features = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    shifted = features.detach() + torch.arange(6.0)[:, None] * 10  # per-input offsets
    np.testing.assert_allclose(
        representation_dissimilarity(features), representation_dissimilarity(shifted), atol=1e-9
    )


def test_constant_input_has_dissimilarity_one():
    features = np.array([[1.0, 2.0, 3.0], [0.1, 0.1, 0.1], [3.0, 1.0, 2.0]])
    rdm = representation_dissimilarity(features)
    np.testing.assert_allclose(rdm[1], [1.0, 0.0, 1.0])
    np.testing.assert_allclose(rdm[:, 1], [1.0, 0.0, 1.0])


def test_rdm_rejects_nan_and_single_input():
    with pytest.raises(ConfigError, match="1 non-finite"):
        representation_dissimilarity(np.array([[1.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ConfigError, match=r"got shape \(1, 3\)"):
        representation_dissimilarity(np.ones((1, 3)))


def test_rdm_stack_shape_and_mismatched_k():
    rng = np.random.default_rng(0)
    stack = rdm_stack([rng.normal(size=(7, 3)), rng.normal(size=(7, 2, 2))])
    assert stack.shape == (2, 7, 7)
    with pytest.raises(ConfigError, match="K=6 inputs but location 0 has K=7"):
        rdm_stack([rng.normal(size=(7, 3)), rng.normal(size=(6, 3))])


def _reference_affinity(rdms):  # rdms: [N, D, K, K]
    n, depth, k, _ = rdms.shape
    rows, cols = np.triu_indices(k, k=1)
    out = np.empty((depth, n, n))
    for d in range(depth):
        for i in range(n):
            for j in range(n):
                out[d, i, j] = spearmanr(rdms[i, d][rows, cols], rdms[j, d][rows, cols])[0]
    return out


@pytest.mark.parametrize("n_tasks,depth,k", [(2, 1, 5), (3, 2, 8), (5, 3, 10)])
def test_affinity_equals_scipy_spearman(n_tasks, depth, k):
    rng = np.random.default_rng(n_tasks * 100 + k)
    rdms = {f"t{i}": rdm_stack([rng.normal(size=(k, 4)) for _ in range(depth)]) for i in range(n_tasks)}
    affinity = task_affinity(rdms)
    assert affinity.shape == (depth, n_tasks, n_tasks)
    np.testing.assert_allclose(affinity, _reference_affinity(np.stack(list(rdms.values()))), atol=1e-12)
    np.testing.assert_array_equal(affinity[:, range(n_tasks), range(n_tasks)], 1.0)


def test_affinity_with_ties_equals_scipy_spearman():
    rng = np.random.default_rng(3)
    # integer-valued, symmetric "RDMs" with many ties
    raw = rng.integers(0, 3, size=(4, 2, 6, 6)).astype(float)
    rdms = raw + raw.transpose(0, 1, 3, 2)
    np.testing.assert_allclose(task_affinity(rdms), _reference_affinity(rdms), atol=1e-12)


def test_affinity_constant_rdm_gives_zero():
    rng = np.random.default_rng(4)
    rdms = rng.random((3, 1, 5, 5))
    rdms[1] = 0.5
    affinity = task_affinity(rdms)
    assert affinity[0, 1, 0] == 0.0 and affinity[0, 1, 2] == 0.0 and affinity[0, 1, 1] == 1.0


def test_affinity_rejects_mismatched_tasks():
    rng = np.random.default_rng(5)
    with pytest.raises(ConfigError, match=r"'b': \(1, 6, 6\)"):
        task_affinity({"a": rng.random((2, 6, 6)), "b": rng.random((1, 6, 6))})
    with pytest.raises(ConfigError, match="got RDMs of shape 2 x 2"):
        task_affinity(rng.random((2, 1, 2, 2)))
