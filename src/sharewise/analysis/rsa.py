"""Representation similarity analysis (RSA) for task affinity.

Branched multi-task networks, Sec. 3.1 and Alg. 1 lines 4-6: for every task a single-task model
is run on the same ``K`` held-out inputs; at each of ``D`` locations in the shared encoder the
representation dissimilarity matrix (RDM) holds ``1 - Pearson`` between the features of every
pair of inputs; the affinity of two tasks at a location is the Spearman correlation of the
strict upper triangles of their RDMs.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from sharewise.analysis._arrays import as_float64
from sharewise.errors import ConfigError


def _row_standardise(rows: np.ndarray) -> np.ndarray:
    """Centre each row and scale it to unit Euclidean norm; constant rows become all zeros.

    The dot product of two standardised rows is their Pearson correlation; a zero row has
    correlation 0 with everything, which is how constant vectors are handled throughout.
    """
    centred = rows - rows.mean(axis=-1, keepdims=True)  # [..., n, m]
    norms = np.linalg.norm(centred, axis=-1, keepdims=True)  # [..., n, 1]
    # A row whose spread is at round-off level of its values is constant.
    scale = np.abs(rows).max(axis=-1, keepdims=True)  # [..., n, 1]
    constant = norms <= 1e-12 * np.maximum(scale, 1e-300) * np.sqrt(rows.shape[-1])
    safe = np.where(constant, 1.0, norms)
    return np.where(constant, 0.0, centred / safe)


def representation_dissimilarity(features: Any) -> np.ndarray:
    """RDM of one task at one location: ``RDM[a, b] = 1 - Pearson(features[a], features[b])``.

    Sec. 3.1 of the paper. Each input's feature map is flattened and the Pearson correlation
    is taken across the feature dimensions of two inputs; features are *not* centred across
    inputs first (METHOD-NOTES).

    Args:
        features: ``[K, ...]`` tensor or array, one feature map per held-out input.

    Returns:
        ``[K, K]`` float64 array, symmetric, with zeros on the diagonal. If an input's features
        are constant, its Pearson correlation with any other input is undefined; it is defined
        here as 0, i.e. dissimilarity 1. The diagonal is 0 by definition (an input is identical
        to itself), also for constant inputs. Values lie in ``[0, 2]``.
    """
    array = as_float64(features, "features")
    if array.ndim < 2 or array.shape[0] < 2:
        raise ConfigError(
            f"features must have shape [K, ...] with at least K=2 inputs and one feature "
            f"dimension, but got shape {tuple(array.shape)}; pass one row of features per input."
        )
    flat = array.reshape(array.shape[0], -1)  # [K, F]
    z = _row_standardise(flat)  # [K, F], unit-norm rows (or zero rows)
    corr = np.clip(z @ z.T, -1.0, 1.0)  # [K, K]
    rdm = 1.0 - corr
    rdm = 0.5 * (rdm + rdm.T)  # exact symmetry despite round-off
    np.fill_diagonal(rdm, 0.0)
    return rdm


def rdm_stack(features_per_location: Sequence[Any]) -> np.ndarray:
    """RDMs of one task at ``D`` locations, stacked: ``[D, K, K]`` (Alg. 1 line 4).

    Args:
        features_per_location: ``D`` entries, each ``[K, ...]``; the feature shape may differ
            between locations but ``K`` (the held-out inputs) must be the same.
    """
    if len(features_per_location) == 0:
        raise ConfigError(
            "features_per_location is empty; pass the features of at least one location."
        )
    rdms = []
    for d, features in enumerate(features_per_location):
        rdm = representation_dissimilarity(features)  # [K, K]
        if rdms and rdm.shape != rdms[0].shape:
            raise ConfigError(
                f"location {d} has K={rdm.shape[0]} inputs but location 0 has "
                f"K={rdms[0].shape[0]}; take every location's features on the same inputs."
            )
        rdms.append(rdm)
    return np.stack(rdms)  # [D, K, K]


def _rdm_array(rdms: Mapping[Hashable, Any] | Any) -> np.ndarray:
    """Stack a task -> ``[D, K, K]`` mapping (or accept an array) into ``[N, D, K, K]``."""
    if isinstance(rdms, Mapping):
        if len(rdms) == 0:
            raise ConfigError("rdms is empty; pass one [D, K, K] RDM stack per task.")
        arrays = {task: as_float64(value, f"rdms[{task!r}]") for task, value in rdms.items()}
        shapes = {task: a.shape for task, a in arrays.items()}
        if len(set(shapes.values())) != 1 or any(len(s) != 3 for s in shapes.values()):
            listing = ", ".join(f"{task!r}: {s}" for task, s in shapes.items())
            raise ConfigError(
                f"every task's RDM stack must have the same shape [D, K, K] (same locations D "
                f"and same inputs K), but got {listing}; compute all RDMs at the same D "
                f"locations on the same K inputs."
            )
        return np.stack(list(arrays.values()))  # [N, D, K, K]
    array = as_float64(rdms, "rdms")
    if array.ndim != 4:
        raise ConfigError(
            f"rdms must be a mapping task -> [D, K, K] or an array [N, D, K, K], but got an "
            f"array of shape {tuple(array.shape)}; stack one rdm_stack() per task."
        )
    return array


def task_affinity(rdms: Mapping[Hashable, Any] | Any) -> np.ndarray:
    """Task affinity tensor ``A[d, i, j]`` = Spearman(triu(RDM_i[d]), triu(RDM_j[d])) (Alg. 1 l. 6).

    The strict upper triangles (diagonal excluded) are ranked with average ranks for ties
    (``scipy.stats.rankdata``), and the Pearson correlation of the ranks is taken, vectorised
    over all task pairs. This equals ``scipy.stats.spearmanr`` except that a task whose RDM is
    constant at a location (all ranks tied) gets affinity 0 with every other task there,
    where scipy returns NaN. The diagonal is 1.

    Args:
        rdms: mapping task -> ``[D, K, K]`` (tasks in the mapping's order) or an array
            ``[N, D, K, K]``. All tasks must share ``D`` and ``K``, with ``K >= 3``.

    Returns:
        ``[D, N, N]`` float64, symmetric in the last two axes, values in ``[-1, 1]``.
    """
    stacked = _rdm_array(rdms)  # [N, D, K, K]
    n_tasks, _, k, k2 = stacked.shape
    if k != k2 or k < 3:
        raise ConfigError(
            f"each RDM must be square with K >= 3 inputs (so its upper triangle has at least "
            f"two entries to rank), but got RDMs of shape {k} x {k2}; use more held-out inputs."
        )
    rows, cols = np.triu_indices(k, k=1)
    upper = stacked[:, :, rows, cols].transpose(1, 0, 2)  # [D, N, M], M = K(K-1)/2
    from scipy.stats import rankdata  # SciPy costs ~0.5 s to import; only affinity needs it

    ranks = rankdata(upper, method="average", axis=-1)  # [D, N, M]
    z = _row_standardise(ranks)  # [D, N, M]
    affinity = np.clip(np.einsum("dnm,dpm->dnp", z, z), -1.0, 1.0)  # [D, N, N]
    affinity = 0.5 * (affinity + affinity.transpose(0, 2, 1))
    diag = np.arange(n_tasks)
    affinity[:, diag, diag] = 1.0
    return affinity
