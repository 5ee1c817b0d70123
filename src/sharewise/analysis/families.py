"""Task families from what the methods learned: similarity matrices, one clustering, ARI.

Each method gives a task-by-task similarity; the families are recovered from all of them the
same way (average-linkage agglomerative clustering of ``1 - similarity`` cut at k clusters) and
scored by the adjusted Rand index against the planted families, so the methods differ only in
their similarity:

- RSA (Vandenhende et al., Sec. 3.1): the task affinity of single-task networks, averaged over
  the core's depths (``sharewise.analysis.rsa.task_affinity``).
- Gumbel-Matrix task embeddings (Maziarz et al., Sec. V-C): each task's connection
  probabilities, all layers' components in one vector.
- Soft-order scales (Meyerson & Miikkulainen, Sec. 4): each task's scales s(t, j, k) as one
  vector.
- A baseline: the cosine of the tasks' loss gradients on the shared layers of a hard-shared
  (parallel) model.

Embedding vectors are compared by the cosine after subtracting the mean over tasks: scales and
probabilities are all positive, so raw cosines are close to 1 for every pair and say little.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def scale_vectors(scales: Sequence[Any]) -> np.ndarray:
    """Soft-order scales ``[T][J][D]`` -> ``[T, J*D]``."""
    arr = np.asarray(scales, dtype=float)
    return arr.reshape(arr.shape[0], -1)


def probability_vectors(probabilities: Mapping[str, Sequence[Sequence[float]]], n_tasks: int) -> np.ndarray:
    """Gumbel-Matrix ``{"t": [layer][component] p}`` (summary.json) -> ``[T, sum_l C_l]``."""
    return np.stack([np.concatenate([np.asarray(p, dtype=float) for p in probabilities[str(t)]])
                     for t in range(n_tasks)])


def centred_cosine(vectors: Any) -> np.ndarray:
    """``[T, F] -> [T, T]``: cosine similarity of the rows after subtracting their mean row.
    A row equal to the mean (zero after centring) has similarity 0 to the others, 1 to itself."""
    v = np.asarray(vectors, dtype=float)
    v = v - v.mean(axis=0, keepdims=True)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    unit = np.divide(v, norms, out=np.zeros_like(v), where=norms > 1e-12)
    sim = unit @ unit.T
    np.fill_diagonal(sim, 1.0)
    return sim


def cosine(vectors: Any) -> np.ndarray:
    """``[T, F] -> [T, T]``: plain cosine similarity (signed vectors such as gradients)."""
    v = np.asarray(vectors, dtype=float)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    unit = np.divide(v, norms, out=np.zeros_like(v), where=norms > 1e-12)
    sim = unit @ unit.T
    np.fill_diagonal(sim, 1.0)
    return sim


def rsa_similarity(affinity: Any) -> np.ndarray:
    """RSA task affinity ``[D, N, N]`` (or ``[N, N]``) -> its mean over depths ``[N, N]``."""
    a = np.asarray(affinity, dtype=float)
    return a.mean(axis=0) if a.ndim == 3 else a


def cluster(similarity: Any, k: int) -> np.ndarray:
    """Labels ``[T]`` from average-linkage clustering of ``1 - similarity`` into ``k`` clusters."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    s = np.asarray(similarity, dtype=float)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise ValueError(f"expected a square similarity matrix, but got shape {list(s.shape)}")
    if not 1 <= k <= s.shape[0]:
        raise ValueError(f"expected 1 <= k <= {s.shape[0]} clusters, but got k={k}")
    d = 1.0 - (s + s.T) / 2.0
    np.fill_diagonal(d, 0.0)
    d = np.clip(d, 0.0, None)
    return fcluster(linkage(squareform(d, checks=False), method="average"), t=k, criterion="maxclust") - 1


def adjusted_rand(truth: Sequence[Any], labels: Sequence[Any]) -> float:
    """Adjusted Rand index of two labelings (1: identical partitions, about 0: chance)."""
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(list(truth), list(labels)))


def family_ari(similarity: Any, families: Sequence[Any]) -> float:
    """ARI of the clustering of ``similarity`` into as many clusters as there are families."""
    return adjusted_rand(families, cluster(similarity, len(set(families))))


def family_coherence(similarity: Any, families: Sequence[Any]) -> dict[str, float]:
    """Per family, the mean similarity between its tasks; ``"across"``: between tasks of different
    families. A family whose within value is clearly above ``across`` is visible in ``similarity``."""
    similarity = np.asarray(similarity, dtype=float)
    fam = np.asarray([str(f) for f in families])
    if similarity.shape != (len(fam), len(fam)):
        raise ValueError(f"expected a {len(fam)} x {len(fam)} similarity for {len(fam)} task families, "
                         f"but got shape {list(similarity.shape)}")
    if "across" in fam:
        raise ValueError("a task family is named 'across', the key reserved for between-family similarity: "
                         "rename that family")
    same, off = fam[:, None] == fam[None, :], ~np.eye(len(fam), dtype=bool)
    out: dict[str, float] = {}
    for f in dict.fromkeys(fam.tolist()):
        inside = (fam[:, None] == f) & (fam[None, :] == f) & off
        out[f] = float(similarity[inside].mean()) if inside.any() else float("nan")
    out["across"] = float(similarity[~same].mean()) if (~same).any() else float("nan")
    return out
