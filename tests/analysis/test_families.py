"""Family recovery: centred cosine equals a direct numpy reference, the clustering recovers a
planted block structure, ARI equals scikit-learn's on known labelings."""

from __future__ import annotations

import numpy as np
import pytest

from sharewise.analysis.families import (adjusted_rand, centred_cosine, cluster, cosine, family_ari,
                                         family_coherence, probability_vectors, rsa_similarity, scale_vectors)


def test_centred_cosine_equals_the_reference() -> None:
    rng = np.random.default_rng(0)
    v = rng.random((5, 7))
    c = v - v.mean(0)
    ref = np.array([[a @ b / np.linalg.norm(a) / np.linalg.norm(b) for b in c] for a in c])
    np.testing.assert_allclose(centred_cosine(v), ref, atol=1e-12)
    np.testing.assert_allclose(cosine(v)[0, 1], v[0] @ v[1] / np.linalg.norm(v[0]) / np.linalg.norm(v[1]))


def test_all_positive_vectors_look_alike_without_centring() -> None:
    v = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.2, 0.8]])
    assert cosine(v)[0, 2] > 0.2  # raw cosine of positive scales: never far apart
    assert centred_cosine(v)[0, 2] < -0.9 and centred_cosine(v)[0, 1] > 0.9


def test_cluster_recovers_planted_blocks_and_ari_scores_it() -> None:
    rng = np.random.default_rng(1)
    families = [0, 0, 0, 1, 1, 2, 2, 2]
    centres = rng.normal(size=(3, 6))
    v = np.stack([centres[f] + 0.05 * rng.normal(size=6) for f in families])
    labels = cluster(centred_cosine(v), 3)
    assert adjusted_rand(families, labels) == 1.0
    assert family_ari(centred_cosine(v), families) == 1.0
    assert family_ari(np.eye(8), families) <= 0.1  # no structure: about chance


def test_ari_equals_known_values() -> None:
    assert adjusted_rand([0, 0, 1, 1], [1, 1, 0, 0]) == 1.0  # label names do not matter
    assert adjusted_rand([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(-0.5)


def test_vectors_from_summary_structures() -> None:
    scales = [[[0.2, 0.8], [0.8, 0.2]], [[0.5, 0.5], [0.5, 0.5]]]  # [T][J][D]
    assert scale_vectors(scales).shape == (2, 4)
    probs = {"0": [[0.1, 0.9], [1.0]], "1": [[0.5, 0.5], [0.2]]}
    np.testing.assert_allclose(probability_vectors(probs, 2), [[0.1, 0.9, 1.0], [0.5, 0.5, 0.2]])
    aff = np.stack([np.eye(2), np.ones((2, 2))])
    np.testing.assert_allclose(rsa_similarity(aff), [[1, 0.5], [0.5, 1]])


def test_cluster_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="got shape \\[2, 3\\]"):
        cluster(np.zeros((2, 3)), 2)
    with pytest.raises(ValueError, match="got k=5"):
        cluster(np.eye(3), 5)


def test_family_coherence_averages_the_right_pairs() -> None:
    # tasks a0, a1 (family a), b0, b1, b2 (family b); each pair's similarity written by hand
    s = np.full((5, 5), -0.5)
    np.fill_diagonal(s, 1.0)
    pairs = {(0, 1): 0.8, (2, 3): 0.3, (2, 4): 0.6, (3, 4): 0.9, (0, 2): 0.1}
    for (i, j), v in pairs.items():
        s[i, j] = s[j, i] = v
    got = family_coherence(s, ["a", "a", "b", "b", "b"])
    assert got["a"] == pytest.approx(0.8)
    assert got["b"] == pytest.approx((0.3 + 0.6 + 0.9) / 3)
    assert got["across"] == pytest.approx((0.1 - 0.5 * 5) / 6)  # the diagonal never counts
    assert np.isnan(family_coherence(np.eye(3), ["a", "b", "b"])["a"])  # one task: no pair


def test_family_coherence_refuses_a_mismatch_and_the_reserved_name() -> None:
    with pytest.raises(ValueError, match="3 x 3"):
        family_coherence(np.eye(2), ["a", "a", "b"])
    with pytest.raises(ValueError, match="rename"):
        family_coherence(np.eye(2), ["across", "b"])
