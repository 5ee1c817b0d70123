"""Turn a :class:`~sharewise.data.table.RawTable`'s text columns into numbers, saying why.

Features: numeric columns keep their values (missing cells get the column median); text columns
are one-hot encoded (missing cells get the most frequent value first), since dense layers need
numbers and categories have no order. Targets: the kind (binary / multiclass / regression) is
declared or inferred, and a missing target cell stays missing (class ``-1``, or ``NaN`` for
regression; see :class:`sharewise.tasks.spec.TaskData`). Every choice is returned as a note.

Checked here, each an error naming the file, line and column: infinite values; a numeric column
with a few stray words (which would otherwise silently become hundreds of one-hot columns); a text
column with a distinct value on almost every row (an id or free text); a classification target
with more than ``max_classes`` classes; a single-class target.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sharewise.data.table import RawTable
from sharewise.errors import DataError

KINDS: tuple[str, ...] = ("binary", "multiclass", "regression")
MISSING_TOKENS: tuple[str, ...] = ("", "?", "na", "nan")  # compared case-insensitively
MAX_INTEGER_CLASSES = 10  # a numeric target with at most this many distinct integers is a class label
MAX_CLASSES = 1000  # more classes than this is almost always an id or a numeric column read as text
STRAY_SHARE = 0.9  # a column whose present cells are >= 90 % numbers is numeric with stray words
MISSING_LABEL = -1  # class index of a missing classification label


def missing_mask(cells: np.ndarray, missing: Sequence[str]) -> np.ndarray:
    """bool ``[N]``: cells equal (case-insensitively) to one of the ``missing`` tokens."""
    return np.isin(np.char.lower(cells.astype(str)), [m.lower() for m in missing])


def _parse(cells: np.ndarray, miss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(float64 values with NaN where missing or not a number, bool mask of present non-numbers)."""
    import pandas as pd

    values = pd.to_numeric(pd.Series(np.where(miss, "nan", cells)), errors="coerce").to_numpy(np.float64)
    return values, ~miss & np.isnan(values)


def _fmt_number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def numeric_column(table: RawTable, j: int, missing: Sequence[str], strict: bool = False) -> np.ndarray | None:
    """Column ``j`` as float64 ``[N]`` (NaN where missing), or None when it is a text column.

    ``strict``: every present cell must be a number (the UCI files). Otherwise a column whose
    present cells are at least :data:`STRAY_SHARE` numbers (and at least 10 of them) is numeric
    with stray words, an error listing them; a column with fewer numbers is text.
    """
    cells = table.cells[:, j]
    miss = missing_mask(cells, missing)
    values, bad = _parse(cells, miss)
    name = table.columns[j]
    if bad.any():
        n_present, n_bad = int((~miss).sum()), int(bad.sum())
        rows = np.flatnonzero(bad)
        if strict:
            r = int(rows[0])
            raise DataError(
                f"{table.where(r, j)}: expected a number (or {' / '.join(repr(m) for m in missing)} for "
                f"missing), but found {str(cells[r])!r} in column {name!r}. Fix that value or re-download the file."
            )
        if n_present - n_bad >= max(10, STRAY_SHARE * n_present):
            shown = ", ".join(f"{str(cells[r])!r} ({table.at(int(r))})" for r in rows[:5])
            raise DataError(
                f"{table.path}: column {name!r} holds numbers in {n_present - n_bad} of {n_present} filled "
                f"rows, but also {n_bad} text value(s): {shown}{' ...' if n_bad > 5 else ''}. Fix them, or "
                "if they mean 'unknown' add them to tasks.options.missing (e.g. missing=['', '?', 'n/a']) "
                "so they are imputed instead of turning the column into categories."
            )
        return None
    inf = np.isinf(values)
    if inf.any():
        r = int(np.flatnonzero(inf)[0])
        raise DataError(
            f"{table.where(r, j)}: column {name!r} holds {int(inf.sum())} infinite value(s) ({str(cells[r])!r}); "
            "a model cannot learn from them. Replace them with a finite value, or empty the cell to mark "
            "it missing."
        )
    return values


def encode_features(table: RawTable, columns: Sequence[str], missing: Sequence[str] = MISSING_TOKENS,
                    strict: bool = False) -> tuple[np.ndarray, list[str], list[str]]:
    """(x float64 ``[N, F]``, feature names, notes) from the named columns, imputed and encoded."""
    feats: list[np.ndarray] = []
    names: list[str] = []
    notes: list[str] = []
    n_rows = table.cells.shape[0]
    for name in columns:
        j = table.columns.index(name)
        cells = table.cells[:, j]
        miss = missing_mask(cells, missing)
        if miss.all():
            raise DataError(f"{table.path}: feature column {name!r} has no values (all {n_rows} cells missing); "
                            "delete the column, fill it, or leave it out with tasks.options.drop.")
        values = numeric_column(table, j, missing, strict)
        if values is not None:
            if miss.any():
                med = float(np.nanmedian(values))
                values = np.where(miss, med, values)
                notes.append(f"{name}: {int(miss.sum())} missing -> median {med:g}")
            feats.append(values)
            names.append(name)
            continue
        present = Counter(cells[~miss].tolist())
        if len(present) > 50 and len(present) > 0.5 * n_rows:
            raise DataError(
                f"{table.path}: column {name!r} is text with {len(present)} distinct values in {n_rows} rows "
                "(an id, a date or free text?); one-hot encoding it would add a column per value. Leave "
                f"it out with tasks.options.drop=[{name!r}], or turn it into numbers first."
            )
        mode = min(present, key=lambda c: (-present[c], c))  # most frequent, ties alphabetical
        filled = np.where(miss, mode, cells)
        cats = sorted(present)
        if miss.any():
            notes.append(f"{name}: {int(miss.sum())} missing -> mode {mode!r}")
        notes.append(f"{name}: one-hot over {len(cats)} categories")
        for cat in cats:
            feats.append((filled == cat).astype(np.float64))
            names.append(f"{name}={cat}")
    x = np.stack(feats, axis=1) if feats else np.zeros((n_rows, 0))  # [N, F]
    return x, names, notes


@dataclass
class Target:
    """One encoded target column. ``y``: int64 class indices (``-1`` where missing) or float32
    values (``NaN`` where missing); ``reason``: why this kind (``'given'`` when declared)."""

    y: np.ndarray
    kind: str
    class_names: list[str]
    reason: str
    n_missing: int


def encode_target(table: RawTable, name: str, kind: str | None = None,
                  missing: Sequence[str] = MISSING_TOKENS, max_classes: int = MAX_CLASSES) -> Target:
    """Column ``name`` as a target of ``kind`` (None: inferred, see :data:`MAX_INTEGER_CLASSES`)."""
    where = f"{table.path}, target column {name!r}"
    if kind is not None and kind not in KINDS:
        raise DataError(f"unknown task kind {kind!r} for {where}: expected one of {KINDS} or None.")
    j = table.columns.index(name)
    cells = table.cells[:, j]
    miss = missing_mask(cells, missing)
    if miss.all():
        raise DataError(f"{where}: every row's target is missing; nothing to learn from.")
    values, bad = _parse(cells, miss)
    numeric = not bad.any()
    if numeric:
        values = numeric_column(table, j, missing)  # raises on inf
    present = values[~miss] if numeric else None
    if kind == "regression" and not numeric:
        raise DataError(f"{where}: kind='regression' needs a numeric target, but found "
                        f"{str(cells[np.flatnonzero(bad)[0]])!r}; pass kind='binary' or 'multiclass', or fix the column.")
    if numeric:
        distinct = np.unique(present)
        is_int = bool(np.all(distinct == np.round(distinct)))
        if kind == "regression" or (kind is None and (not is_int or len(distinct) > MAX_INTEGER_CLASSES)):
            reason = "given" if kind else (f"numeric target with {len(distinct)} distinct values"
                                           + ("" if is_int else " (not all integers)"))
            return Target(values.astype(np.float32), "regression", [], reason, int(miss.sum()))
        names = [_fmt_number(v) for v in distinct]
        y = np.full(len(cells), MISSING_LABEL, dtype=np.int64)
        y[~miss] = np.searchsorted(distinct, present)
        reason = f"numeric target with {len(distinct)} distinct integer values (<= {MAX_INTEGER_CLASSES})"
    else:
        names = sorted(set(cells[~miss].tolist()))
        index = {c: i for i, c in enumerate(names)}
        y = np.array([index[c] if not m else MISSING_LABEL for c, m in zip(cells.tolist(), miss)], dtype=np.int64)
        reason = f"non-numeric target with {len(names)} distinct values"
    if kind:
        reason = "given"
    if len(names) < 2:
        raise DataError(f"{where}: the target has a single class {names}; a classification task needs at "
                        "least two.")
    if len(names) > max_classes:
        raise DataError(
            f"{where}: {len(names)} distinct classes in {int((~miss).sum())} labelled rows is more than "
            f"max_classes={max_classes} (an id or a numeric column read as text?). Declare kind='regression' "
            "if it is a quantity, or raise tasks.options.max_classes if you mean it."
        )
    if kind == "binary" and len(names) != 2:
        raise DataError(f"{where}: kind='binary' needs exactly 2 target values, but found {len(names)}: "
                        f"{names[:10]}; use kind='multiclass'.")
    resolved = kind or ("binary" if len(names) == 2 else "multiclass")
    return Target(y, resolved, names, reason, int(miss.sum()))
