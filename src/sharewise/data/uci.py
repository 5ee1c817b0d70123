"""The ten UCI classification tables of the soft-ordering paper (Meyerson & Miikkulainen 2018, Fig. 5a).

Each file is read from the original UCI text format (see ``../shared/data/README.md``), so the same
files downloaded from the UCI repository work unchanged. Features are returned *unscaled*: the paper
scales every feature to [0, 1] (App. A.2), which must be fitted on the training split only; use
:func:`sharewise.data.splits.minmax_scale` after :func:`sharewise.data.splits.fixed_split`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sharewise.data.columns import encode_features, missing_mask
from sharewise.data.table import WHITESPACE, RawTable, is_number, read_table
from sharewise.errors import DataError

# The paper's Fig. 5a order: Australian credit, Breast cancer, Ecoli, German credit, Heart disease,
# Hepatitis, Iris, Pima diabetes, Wine, Yeast.
UCI10_NAMES: tuple[str, ...] = (
    "australian", "wdbc", "ecoli", "german", "heart-cleveland",
    "hepatitis", "iris", "pima", "wine", "yeast",
)  # fmt: skip


@dataclass(frozen=True)
class _Spec:
    file: str
    sep: str | None  # None: any run of whitespace
    n_fields: int
    label_col: int
    n_rows: int  # the published number of instances: fewer means a truncated file
    classes: tuple[str, ...]  # the published class labels: another label means a damaged line
    drop_cols: tuple[int, ...] = ()  # ids / sequence names, not features
    header: bool = False  # skip a first line whose features do not parse (ecoli's column names)


# Row counts and class sets as published by UCI (the format's known facts, checked on load).
_SPECS: dict[str, _Spec] = {
    "australian": _Spec("australian.data", ",", 15, -1, 690, ("0", "1")),
    "wdbc": _Spec("wdbc.data", ",", 32, 1, 569, ("B", "M"), drop_cols=(0,)),
    "ecoli": _Spec("ecoli.data", None, 9, -1, 336, ("cp", "im", "imL", "imS", "imU", "om", "omL", "pp"),
                   drop_cols=(0,), header=True),
    # The paper's 24 features are UCI's numeric version, not the 20 coded attributes of german.data.
    "german": _Spec("german.data-numeric", None, 25, -1, 1000, ("1", "2")),
    "heart-cleveland": _Spec("heart-cleveland.data", ",", 14, -1, 303, ("0", "1", "2", "3", "4")),
    "hepatitis": _Spec("hepatitis.data", ",", 20, 0, 155, ("1", "2")),  # class (1 die / 2 live) is the FIRST column
    "iris": _Spec("iris.data", ",", 5, -1, 150, ("Iris-setosa", "Iris-versicolor", "Iris-virginica")),
    "pima": _Spec("pima.data", ",", 9, -1, 768, ("0", "1")),
    "wine": _Spec("wine.data", ",", 14, -1, 178, ("1", "2", "3")),
    "yeast": _Spec("yeast.data", ",", 9, -1, 1484,
                   ("CYT", "ERL", "EXC", "ME1", "ME2", "ME3", "MIT", "NUC", "POX", "VAC")),
}

_MISSING = "?"


@dataclass
class UciTable:
    """One UCI task: raw features, class indices and how they were derived.

    x: float32 ``[N, F]``, unscaled, missing cells median-imputed. y: int64 ``[N]`` in
    ``0..n_classes-1``, class ``k`` being ``class_names[k]`` (the file's labels sorted).
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    class_names: list[str]
    n_classes: int
    source: Path
    notes: str


def _resolve(data_dir: Path, spec: _Spec, name: str) -> Path:
    candidates = [data_dir / "uci10" / spec.file, data_dir / spec.file]
    for c in candidates:
        if c.is_file():
            return c
    raise DataError(
        f"expected the UCI file {spec.file} for task {name!r} at {candidates[0]} or {candidates[1]}, "
        "but neither exists. Copy the original UCI file there (see ../shared/data/README.md) or pass "
        "--data-dir pointing at the folder that holds uci10/."
    )


def _label_order(labels: list[str]) -> list[str]:
    uniq = sorted(set(labels))
    if all(is_number(u) for u in uniq):
        uniq.sort(key=float)  # "10" after "9"
    return uniq


def load_uci(name: str, data_dir: str | Path) -> UciTable:
    """Load one of :data:`UCI10_NAMES` from ``data_dir/uci10/`` (or ``data_dir`` itself).

    Read by :func:`sharewise.data.table.read_table` (the one table path); this module only knows
    each file's layout. Missing cells (``?``, in heart-cleveland and hepatitis) are replaced by the
    median of the column's non-missing values over the whole file. Imputing from all rows (not only
    training rows) is a small, deliberate simplification: the value is a label-free column
    statistic, it keeps the table independent of any split, and the count of imputed cells is
    reported in ``notes``. Labels are mapped to ``0..C-1`` in sorted order (numeric labels sorted
    as numbers).
    """
    if name not in _SPECS:
        raise DataError(f"unknown UCI task {name!r}: expected one of {', '.join(UCI10_NAMES)}.")
    spec = _SPECS[name]
    path = _resolve(Path(data_dir), spec, name)
    n_cols = spec.n_fields
    label_col = spec.label_col % n_cols
    feat_cols = [c for c in range(n_cols) if c != label_col and c not in spec.drop_cols]
    table = read_table(path, sep=spec.sep or WHITESPACE, header=False, n_fields=n_cols,
                       what=f"for {name}", encoding="utf-8")
    header_skipped = False
    if spec.header and not all(is_number(table.cells[0, c]) for c in feat_cols):
        table = RawTable(table.path, table.columns, table.cells[1:], table.lines[1:], table.notes)
        header_skipped = True
    if not len(table.cells):
        raise DataError(f"{path}: expected rows of {name} data, but the file has none; re-download it.")
    labels = table.cells[:, label_col]
    unlabelled = np.flatnonzero(np.isin(labels, ["", _MISSING]))
    if len(unlabelled):
        r = int(unlabelled[0])
        raise DataError(
            f"{table.where(r)}: the class label (field {label_col + 1}) is missing ({str(labels[r])!r}) in "
            f"{','.join(table.cells[r])!r}; rows without a label cannot be used, delete it."
        )
    foreign = np.flatnonzero(~np.isin(labels, list(spec.classes)))
    if len(foreign):
        r = int(foreign[0])
        raise DataError(
            f"{table.where(r)}, field {label_col + 1}: expected a {name} class label, one of {list(spec.classes)}, "
            f"but found {str(labels[r])!r}; the line is damaged (a truncated file?). Fix it or re-download the file."
        )
    n_missing = int(missing_mask(table.cells[:, feat_cols], [_MISSING]).sum())
    x, _, _ = encode_features(table, [table.columns[c] for c in feat_cols], missing=[_MISSING], strict=True)
    if len(table.cells) != spec.n_rows:  # after the line-level checks: they name the line
        raise DataError(
            f"{path}: expected the {spec.n_rows} rows UCI publishes for {name}, but found {len(table.cells)} data "
            f"lines; the file is {'truncated' if len(table.cells) < spec.n_rows else 'longer than the original'} or "
            "another version. Re-download the original file."
        )
    notes = [f"{name}: {x.shape[0]} rows x {x.shape[1]} features from {path.name}"]
    if spec.drop_cols:
        notes.append(f"dropped non-feature column(s) {[c + 1 for c in spec.drop_cols]} (ids/names)")
    if header_skipped:
        notes.append("skipped 1 header line")
    if n_missing:
        n_cols_missing = int(missing_mask(table.cells[:, feat_cols], [_MISSING]).any(axis=0).sum())
        notes.append(
            f"imputed {n_missing} missing ('?') cells in {n_cols_missing} column(s) with the column "
            "median of the non-missing values"
        )
    class_names = _label_order(labels.tolist())
    index = {c: i for i, c in enumerate(class_names)}
    y = np.array([index[lab] for lab in labels.tolist()], dtype=np.int64)
    notes.append(f"labels {class_names} -> 0..{len(class_names) - 1}; features unscaled")
    return UciTable(
        name=name,
        x=x.astype(np.float32),
        y=y,
        class_names=class_names,
        n_classes=len(class_names),
        source=path,
        notes="; ".join(notes) + ".",
    )


def load_uci10(data_dir: str | Path, names: Sequence[str] = UCI10_NAMES) -> dict[str, UciTable]:
    """Load several UCI tasks (default: all ten, in the paper's Fig. 5a order)."""
    return {n: load_uci(n, data_dir) for n in names}
