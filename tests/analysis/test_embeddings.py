"""Task embeddings from allocations, cosine similarity against sklearn."""

import numpy as np
import pytest
from sklearn.metrics.pairwise import cosine_similarity

from sharewise.analysis import cosine_similarity_matrix, identical_embedding_clusters, task_embeddings
from sharewise.errors import ConfigError

ALLOCATIONS = {
    "a": [[1, 0, 1], [0, 1, 0]],
    "b": [[1, 0, 1], [0, 1, 0]],
    "c": [[0, 1, 1], [1, 1, 0]],
    "d": [[0, 0, 0], [0, 0, 0]],
}


def test_embeddings_concatenate_layers():
    emb = task_embeddings(ALLOCATIONS)
    assert emb.shape == (4, 6)
    np.testing.assert_array_equal(emb[2], [0, 1, 1, 1, 1, 0])


def test_cosine_matches_sklearn_and_zero_rows_give_zero():
    emb = task_embeddings(ALLOCATIONS)
    sim = cosine_similarity_matrix(emb)
    np.testing.assert_allclose(sim[:3, :3], cosine_similarity(emb[:3]), atol=1e-12)
    assert sim[0, 2] == pytest.approx(2 / np.sqrt(3 * 4))  # shared: layer0 comp2, layer1 comp1
    np.testing.assert_array_equal(sim[3], 0.0)
    np.testing.assert_array_equal(sim[:, 3], 0.0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 7))
    np.testing.assert_allclose(cosine_similarity_matrix(x), cosine_similarity(x), atol=1e-12)


def test_identical_clusters():
    emb = task_embeddings(ALLOCATIONS)
    assert identical_embedding_clusters(emb, list(ALLOCATIONS)) == [["a", "b"], ["c"], ["d"]]


def test_bad_allocations():
    with pytest.raises(ConfigError, match=r"task 'b' has components per layer \[3, 2\]"):
        task_embeddings({"a": [[1, 0, 1], [0, 1, 0]], "b": [[1, 0, 1], [0, 1]]})
    with pytest.raises(ConfigError, match=r"only 0 and 1, but got \[0.0, 0.5, 1.0\]"):
        task_embeddings({"a": [[1, 0.5, 0]]})
