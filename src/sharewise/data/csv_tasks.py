"""Tasks from the user's own CSV files: one file per task, one named target column.

This is the route for data the library does not ship a loader for. Everything a model needs is made
numeric here, and every choice that changes the data (one-hot encoding, imputation, the inferred task
kind) is written into ``notes`` so a run report can say exactly what was trained on. Only the
standard ``csv`` module and numpy are used; pandas is not a dependency.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sharewise.errors import DataError

KINDS: tuple[str, ...] = ("binary", "multiclass", "regression")
MISSING_TOKENS = frozenset({"", "?", "na", "nan"})  # compared case-insensitively after strip()
MAX_INTEGER_CLASSES = 10  # a numeric target with at most this many distinct integers is a class label


@dataclass
class CsvTable:
    """One CSV task. x: float32 ``[N, F]``; y: int64 class indices, or float32 targets for regression."""

    name: str
    x: np.ndarray
    y: np.ndarray
    kind: str
    kind_inferred: bool
    class_names: list[str]
    feature_names: list[str]
    source: Path
    notes: str = ""
    n_classes: int = field(init=False)

    def __post_init__(self) -> None:
        self.n_classes = len(self.class_names)


def _is_missing(cell: str) -> bool:
    return cell.strip().lower() in MISSING_TOKENS


def _to_float(cells: list[str]) -> np.ndarray | None:
    """Parse a column as floats (NaN where missing); None if any present cell is not a number."""
    out = np.empty(len(cells), dtype=np.float64)
    for i, cell in enumerate(cells):
        if _is_missing(cell):
            out[i] = np.nan
            continue
        try:
            out[i] = float(cell)
        except ValueError:
            return None
    return out


def _fmt_number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _read(path: Path) -> tuple[list[str], list[list[str]]]:
    if not path.is_file():
        raise DataError(f"expected a CSV file at {path}, but it does not exist; check the path.")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path} is empty: expected a header row of column names, then data rows.")
        header = [h.strip() for h in header]
        if all(_to_float([h]) is not None and h for h in header):
            raise DataError(
                f"{path}, line 1: expected a header row of column names, but found only numbers "
                f"({','.join(header[:5])}...). Add a header line naming each column."
            )
        rows = []
        for row in reader:
            if not any(c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise DataError(
                    f"{path}, line {reader.line_num}: expected {len(header)} fields (as in the header), "
                    f"but found {len(row)}: {','.join(row)!r}. Fix that row (quote fields that contain "
                    "commas)."
                )
            rows.append([c.strip() for c in row])
    if not rows:
        raise DataError(f"{path}: expected data rows after the header, but found none.")
    return header, rows


def _target(
    path: Path, cells: list[str], kind: str | None
) -> tuple[np.ndarray, str, list[str], str]:
    """Return (y, kind, class_names, reason) for the target column's present cells."""
    numeric = _to_float(cells)
    if kind == "regression" or (kind is None and numeric is not None):
        if numeric is None:
            bad = next(c for c in cells if _to_float([c]) is None)
            raise DataError(
                f"{path}: kind='regression' needs a numeric target, but found {bad!r}; "
                "pass kind='binary' or 'multiclass', or fix the column."
            )
        distinct = np.unique(numeric)
        is_int = bool(np.all(distinct == np.round(distinct)))
        if kind == "regression" or not is_int or len(distinct) > MAX_INTEGER_CLASSES:
            reason = (
                "given" if kind else f"numeric target with {len(distinct)} distinct values"
                + ("" if is_int else " (not all integers)")
            )
            return numeric.astype(np.float32), "regression", [], reason
        reason = f"numeric target with {len(distinct)} distinct integer values (<= {MAX_INTEGER_CLASSES})"
        names = [_fmt_number(v) for v in distinct]
        y = np.searchsorted(distinct, numeric)
    else:
        if numeric is not None:
            distinct = np.unique(numeric)
            names = [_fmt_number(v) for v in distinct]
            y = np.searchsorted(distinct, numeric)
        else:
            names = sorted(set(cells))
            index = {c: i for i, c in enumerate(names)}
            y = np.array([index[c] for c in cells])
        reason = "given" if kind else f"non-numeric target with {len(names)} distinct values"
    if len(names) < 2:
        raise DataError(
            f"{path}: the target has a single class {names}; a classification task needs at least two."
        )
    if kind == "binary" and len(names) != 2:
        raise DataError(
            f"{path}: kind='binary' needs exactly 2 target values, but found {len(names)}: "
            f"{names[:10]}; use kind='multiclass'."
        )
    resolved = kind or ("binary" if len(names) == 2 else "multiclass")
    return y.astype(np.int64), resolved, names, reason


def load_csv_task(
    path: str | Path, target: str, kind: str | None = None, name: str | None = None
) -> CsvTable:
    """Load one CSV file as a task predicting column ``target``.

    Numeric feature columns: missing cells (empty, ``?``, ``NA``, ``nan``) get the column median.
    Non-numeric columns: missing cells get the most frequent value, then the column is one-hot
    encoded (one 0/1 feature per category, sorted), since dense layers need numbers and categories
    have no order. Rows whose target is missing are dropped, since a target cannot be imputed.
    ``kind=None`` infers the kind (see :data:`MAX_INTEGER_CLASSES`); the reason goes in ``notes``.
    """
    path = Path(path)
    if kind is not None and kind not in KINDS:
        raise DataError(f"unknown task kind {kind!r} for {path}: expected one of {KINDS} or None.")
    header, rows = _read(path)
    if target not in header:
        raise DataError(
            f"{path}: expected a target column named {target!r}, but the header has {header}; "
            "pass one of those as the target."
        )
    t_col = header.index(target)
    keep = [r for r in rows if not _is_missing(r[t_col])]
    notes = [f"{len(rows)} rows from {path.name}"]
    if len(keep) < len(rows):
        notes.append(f"dropped {len(rows) - len(keep)} rows with a missing target")
    if not keep:
        raise DataError(f"{path}: every row's target {target!r} is missing; nothing to learn from.")
    y, resolved, class_names, reason = _target(path, [r[t_col] for r in keep], kind)
    notes.append(f"kind {resolved} ({'given' if kind else 'inferred: ' + reason})")

    columns: list[np.ndarray] = []
    feature_names: list[str] = []
    for j, col_name in enumerate(header):
        if j == t_col:
            continue
        cells = [r[j] for r in keep]
        values = _to_float(cells)
        n_miss = sum(_is_missing(c) for c in cells)
        if n_miss == len(cells):
            raise DataError(
                f"{path}: feature column {col_name!r} has no values (all {n_miss} cells missing); "
                "delete the column or fill it."
            )
        if values is not None:
            if n_miss:
                med = float(np.nanmedian(values))
                values[np.isnan(values)] = med
                notes.append(f"{col_name}: {n_miss} missing -> median {med:g}")
            columns.append(values)
            feature_names.append(col_name)
            continue
        present = Counter(c for c in cells if not _is_missing(c))
        mode = min(present, key=lambda c: (-present[c], c))  # most frequent, ties alphabetical
        filled = [mode if _is_missing(c) else c for c in cells]
        cats = sorted(present)
        if n_miss:
            notes.append(f"{col_name}: {n_miss} missing -> mode {mode!r}")
        notes.append(f"{col_name}: one-hot over {len(cats)} categories")
        for cat in cats:
            columns.append(np.array([c == cat for c in filled], dtype=np.float64))
            feature_names.append(f"{col_name}={cat}")
    x = np.stack(columns, axis=1) if columns else np.zeros((len(keep), 0))  # [N, F]
    return CsvTable(
        name=name or path.stem,
        x=x.astype(np.float32),
        y=y,
        kind=resolved,
        kind_inferred=kind is None,
        class_names=class_names,
        feature_names=feature_names,
        source=path,
        notes="; ".join(notes) + ".",
    )


def load_csv_folder(
    folder: str | Path, target: str, kinds: Mapping[str, str] | None = None
) -> dict[str, CsvTable]:
    """One task per ``*.csv`` in ``folder`` (task name = file stem, sorted by name).

    ``kinds`` optionally fixes the kind of some tasks by name; the others are inferred.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"expected a folder of CSV task files at {folder}, but it is not a directory.")
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise DataError(
            f"expected one *.csv file per task in {folder}, but found none; put the task files there."
        )
    kinds = dict(kinds or {})
    unknown = sorted(set(kinds) - {f.stem for f in files})
    if unknown:
        raise DataError(
            f"kinds names tasks {unknown} that have no CSV file in {folder}; the tasks are "
            f"{[f.stem for f in files]}."
        )
    return {f.stem: load_csv_task(f, target, kinds.get(f.stem)) for f in files}
