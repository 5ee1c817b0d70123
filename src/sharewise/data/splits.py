"""Fixed, seeded train/validation/test splits and train-only feature scaling.

The soft-ordering paper (App. A.2) scales every UCI feature to [0, 1] and uses "a random 80-20 split
... fixed across trials"; the Gumbel-Matrix Omniglot setup splits each character's drawings 10/4/6.
Both need a split that is a pure function of (labels, fractions, seed), so that every scheme and
every trial sees exactly the same examples, and a scaler that never looks at held-out data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sharewise.errors import DataError


def _check_fractions(fractions: Sequence[float]) -> np.ndarray:
    fr = np.asarray(list(fractions), dtype=np.float64)
    if fr.ndim != 1 or fr.size == 0 or np.any(~np.isfinite(fr)) or np.any(fr <= 0):
        raise DataError(
            f"split fractions must be a non-empty list of numbers > 0, but got {list(fractions)}; "
            "drop any zero part (for example [0.8, 0.2] instead of [0.8, 0.2, 0.0])."
        )
    if abs(fr.sum() - 1.0) > 1e-6:
        raise DataError(
            f"split fractions must sum to 1 (within 1e-6), but {list(fractions)} sums to "
            f"{fr.sum():.8g}; rescale them, e.g. [0.8, 0.2] for an 80-20 split."
        )
    return fr


def _round_counts(total: int, fractions: np.ndarray) -> np.ndarray:
    """Largest-remainder rounding: integer counts that sum to ``total`` and are closest to ``total*f``."""
    ideal = total * fractions
    counts = np.floor(ideal).astype(np.int64)
    order = np.argsort(-(ideal - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts


def fixed_split(
    labels_or_n: int | np.ndarray | Sequence[int],
    fractions: Sequence[float],
    seed: int,
    stratify: bool = True,
) -> list[np.ndarray]:
    """Partition ``range(n)`` into ``len(fractions)`` sorted index arrays, deterministically for ``seed``.

    With labels and ``stratify=True`` each class is shuffled and dealt out to the parts in proportion
    to ``fractions``, so every part keeps the class balance. A class with fewer members than parts
    cannot appear everywhere; its members go to the parts that are furthest below their overall target
    size, so the part sizes stay within a few examples of ``n * fractions`` rather than the small class
    being dropped or raising. Which examples land where is random (``np.random.default_rng(seed)``).
    """
    fr = _check_fractions(fractions)
    rng = np.random.default_rng(seed)
    if np.isscalar(labels_or_n):
        n = int(labels_or_n)  # type: ignore[arg-type]
        if n < 0:
            raise DataError(f"fixed_split needs n >= 0 examples, but got n={n}.")
        labels = None
    else:
        labels = np.asarray(labels_or_n)
        if labels.ndim != 1:
            raise DataError(f"fixed_split expected 1-D labels, but got an array of shape {labels.shape}.")
        n = len(labels)
    targets = _round_counts(n, fr)
    if labels is None or not stratify:
        perm = rng.permutation(n)
        bounds = np.cumsum(targets)[:-1]
        return [np.sort(part) for part in np.split(perm, bounds)]

    classes, inverse = np.unique(labels, return_inverse=True)
    assigned = np.zeros(len(fr), dtype=np.int64)
    parts: list[list[np.ndarray]] = [[] for _ in fr]
    for c in rng.permutation(len(classes)):  # random class order: no class always gets leftovers first
        members = rng.permutation(np.flatnonzero(inverse == c))
        ideal = len(members) * fr
        counts = np.floor(ideal).astype(np.int64)
        leftover = len(members) - int(counts.sum())
        if leftover:
            # Give the leftovers to the parts furthest below their overall target (ties: larger
            # fractional remainder), which keeps the part sizes close to n * fractions.
            deficit = targets - assigned - counts
            order = np.lexsort((-(ideal - counts), -deficit))
            counts[order[:leftover]] += 1
        start = 0
        for p, k in enumerate(counts):
            parts[p].append(members[start : start + k])
            start += k
        assigned += counts
    return [np.sort(np.concatenate(p)) if p else np.empty(0, dtype=np.int64) for p in parts]


def minmax_scale(train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Scale columns to [0, 1] using min/max fitted on ``train`` only; apply the same map to ``others``.

    Returns ``(train_scaled, *others_scaled)``. Fitting only on the training part is deliberate: a
    scaler fitted on all data would leak the validation/test range into training. The price is that
    held-out values can fall outside [0, 1] (a test value above the training maximum maps above 1);
    that is correct, not a bug. Columns constant in ``train`` map to 0 in every array: the training
    data gives them no scale, and they carry no information the model could have learned from.
    Implements the paper's "each input feature was scaled to be between 0 and 1" (App. A.2).
    """
    train = np.asarray(train)
    if train.ndim != 2 or train.shape[0] == 0:
        raise DataError(
            f"minmax_scale expected a non-empty 2-D train array [N, F], but got shape {train.shape}."
        )
    out_dtype = np.result_type(train.dtype, np.float32)
    lo = train.min(axis=0).astype(np.float64)
    span = train.max(axis=0).astype(np.float64) - lo
    if not np.all(np.isfinite(span)):
        raise DataError(
            "minmax_scale found NaN or infinite values in the train array; impute missing values "
            "before scaling."
        )
    constant = span == 0
    scale = np.where(constant, 0.0, 1.0 / np.where(constant, 1.0, span))
    result = []
    for i, arr in enumerate((train, *others)):
        arr = np.asarray(arr)
        if arr.ndim != 2 or arr.shape[1] != train.shape[1]:
            raise DataError(
                f"minmax_scale: array {i} should have shape [M, {train.shape[1]}] like train, but "
                f"got {arr.shape}."
            )
        result.append(((arr - lo) * scale).astype(out_dtype))
    return tuple(result)
