"""Tasks from the user's own tables: one file per task, or one file with several target columns.

This is the route for data the library does not ship a loader for. Everything a model needs is made
numeric here (:mod:`sharewise.data.columns`), and every choice that changes the data (one-hot
encoding, imputation, the inferred task kind, a detected separator) is written into ``notes`` so a
run report can say exactly what was trained on. Files are read by :func:`sharewise.data.table.read_table`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sharewise.data.columns import KINDS, MAX_CLASSES, MISSING_TOKENS, Target, encode_features, encode_target
from sharewise.data.table import RawTable, read_table
from sharewise.errors import DataError

__all__ = ["KINDS", "CsvTable", "LabelTable", "load_csv_folder", "load_csv_task", "load_label_table"]


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


def _check_columns(table: RawTable, wanted: Sequence[str], role: str) -> None:
    absent = [c for c in wanted if c not in table.columns]
    if absent:
        raise DataError(
            f"{table.path}: expected {'a ' + role + ' column named ' + repr(absent[0]) if len(absent) == 1 else role + ' columns ' + str(absent)}, "
            f"but the header has {table.columns}; pass {'one' if len(absent) == 1 else 'some'} of those as the {role}."
        )


def load_csv_task(path: str | Path, target: str, kind: str | None = None, name: str | None = None,
                  missing: Sequence[str] = MISSING_TOKENS, sep: str | None = None,
                  encoding: str = "utf-8-sig", drop: Sequence[str] = (),
                  max_classes: int = MAX_CLASSES) -> CsvTable:
    """Load one table file as a task predicting column ``target``.

    Rows whose target is missing are dropped (a single-task file has nothing else to learn from
    them; :func:`load_label_table` keeps them for the other tasks). Features as in
    :func:`sharewise.data.columns.encode_features`; ``kind=None`` infers the kind.
    """
    path = Path(path)
    if kind is not None and kind not in KINDS:
        raise DataError(f"unknown task kind {kind!r} for {path}: expected one of {KINDS} or None.")
    table = read_table(path, sep=sep, encoding=encoding)
    _check_columns(table, [target], "target")
    _check_columns(table, drop, "dropped")
    tgt = encode_target(table, target, kind, missing, max_classes)
    labelled = tgt.y >= 0 if tgt.kind != "regression" else ~np.isnan(tgt.y)
    notes = [*table.notes, f"{len(labelled)} rows from {path.name}"]
    if not labelled.all():
        notes.append(f"dropped {int((~labelled).sum())} rows with a missing target")
        table = RawTable(table.path, table.columns, table.cells[labelled], table.lines[labelled], table.notes)
    notes.append(f"kind {tgt.kind} ({'given' if kind else 'inferred: ' + tgt.reason})")
    features = [c for c in table.columns if c != target and c not in drop]
    x, feature_names, feature_notes = encode_features(table, features, missing)
    return CsvTable(
        name=name or path.stem,
        x=x.astype(np.float32),
        y=tgt.y[labelled],
        kind=tgt.kind,
        kind_inferred=kind is None,
        class_names=tgt.class_names,
        feature_names=feature_names,
        source=path,
        notes="; ".join(notes + feature_notes) + ".",
    )


def load_csv_folder(
    folder: str | Path, target: str, kinds: Mapping[str, str] | None = None, **options: object
) -> dict[str, CsvTable]:
    """One task per ``*.csv`` in ``folder`` (task name = file stem, sorted by name).

    ``kinds`` optionally fixes the kind of some tasks by name; the others are inferred.
    ``options`` go to :func:`load_csv_task` (``missing``, ``sep``, ``encoding``, ``drop``).
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
    return {f.stem: load_csv_task(f, target, kinds.get(f.stem), **options) for f in files}  # type: ignore[arg-type]


@dataclass
class LabelTable:
    """One table, several target columns (one task each) on the same rows.

    ``x``: float32 ``[N, F]`` shared by every task; ``targets``: column -> :class:`Target`, whose
    ``y`` marks a missing label with ``-1`` (classes) or ``NaN`` (regression).
    """

    x: np.ndarray
    targets: dict[str, Target]
    feature_names: list[str]
    source: Path
    notes: list[str]

    def labelled(self, name: str) -> np.ndarray:
        """bool ``[N]``: rows that carry a label for task ``name``."""
        t = self.targets[name]
        return ~np.isnan(t.y) if t.kind == "regression" else t.y >= 0


def load_label_table(path: str | Path, targets: Sequence[str], kinds: Mapping[str, str] | None = None,
                     missing: Sequence[str] = MISSING_TOKENS, sep: str | None = None,
                     encoding: str = "utf-8-sig", drop: Sequence[str] = (),
                     max_classes: int = MAX_CLASSES) -> LabelTable:
    """Read one file whose ``targets`` columns are each a task; every other column (except
    ``drop``) is a feature. A missing target cell means "no label for that task on this row"; the
    row still serves the other tasks."""
    path = Path(path)
    if not targets:
        raise DataError(f"tasks.options.targets is empty: name the target columns of {path}, one task each.")
    dup = sorted({t for t in targets if list(targets).count(t) > 1})
    if dup:
        raise DataError(f"tasks.options.targets names {dup} more than once; each column is one task.")
    kinds = dict(kinds or {})
    unknown = sorted(set(kinds) - set(targets))
    if unknown:
        raise DataError(f"tasks.options.kinds names {unknown}, which are not among the targets {list(targets)}.")
    table = read_table(path, sep=sep, encoding=encoding)
    _check_columns(table, targets, "target")
    _check_columns(table, drop, "dropped")
    notes = [*table.notes, f"{len(table.cells)} rows from {path.name}"]
    encoded: dict[str, Target] = {}
    for name in targets:
        tgt = encode_target(table, name, kinds.get(name), missing, max_classes)
        encoded[name] = tgt
        notes.append(f"{name}: kind {tgt.kind} ({'given' if name in kinds else 'inferred: ' + tgt.reason})"
                     + (f", {tgt.n_missing} rows unlabelled" if tgt.n_missing else ""))
    features = [c for c in table.columns if c not in targets and c not in drop]
    if drop:
        notes.append(f"left out column(s) {list(drop)}")
    x, feature_names, feature_notes = encode_features(table, features, missing)
    return LabelTable(x.astype(np.float32), encoded, feature_names, path, notes + feature_notes)
