"""Multi-label tables: one file, several target columns, each a task on the same rows.

The most common multi-task table: every row is one example and each task is a column. All tasks
share one split of the rows (fixed by ``split_seed``, independent of the run seed, random and not
stratified since several targets cannot all be stratified at once), so a row is never training
data for one task and test data for another. The tasks share one input tensor per split, which
puts the sampler in shared-input mode (every task sees the same rows each step).

A missing target cell means "no label for that task on this row": the row still trains the other
tasks. Regression targets are standardised on the training split by default
(``standardise_targets``); metrics are reported in original units. Features are min-max scaled
on the training rows, as for UCI-10.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from sharewise.data.tasksets._registry import register_taskset, three_way_split
from sharewise.errors import ConfigError, DataError
from sharewise.tasks.spec import TaskData


def resolve_table_path(path: str, data_dir: str | None, key: str = "tasks.options.path") -> Path:
    """``path`` as given when it exists (or is absolute), else relative to ``data_dir``."""
    if not path:
        raise ConfigError(f"{key} is empty: set it to the table file (CSV, TSV or Parquet)")
    p = Path(path).expanduser()
    if not p.is_absolute() and not p.exists() and data_dir:
        p = Path(data_dir).expanduser() / p
    if not p.is_file():
        raise DataError(f"{key}: {path!r} is not a file (looked at {p}); set it to the table file")
    return p


def _check_split(source: Path, name: str, kind: str, y: np.ndarray, parts: Sequence[np.ndarray]) -> None:
    """Every task needs labelled training and test rows, and two classes to train on."""
    labelled = ~np.isnan(y) if kind == "regression" else y >= 0
    for split, rows in (("train", parts[0]), ("test", parts[2])):
        if not labelled[rows].any():
            raise DataError(
                f"{source}, target column {name!r}: the {split} split has no labelled row ({int(labelled.sum())} "
                f"labelled rows of {len(y)} in all, split {len(parts[0])}/{len(parts[1])}/{len(parts[2])}). The "
                "table is too small for this task: add rows, or lower tasks.options.val_fraction / test_fraction."
            )
    if kind != "regression":
        classes = np.unique(y[parts[0]][labelled[parts[0]]])
        if len(classes) < 2:
            raise DataError(
                f"{source}, target column {name!r}: the training split holds a single class ({len(parts[0])} rows); "
                "a classifier needs two. Add rows, or change tasks.options.split_seed / test_fraction."
            )


@register_taskset("table")
def build_table(*, data_dir: str | None = None, seed: int = 0, path: str = "", targets: Sequence[str] = (),
                kinds: dict | None = None, drop: Sequence[str] = (), missing: Sequence[str] | None = None,
                sep: str | None = None, encoding: str = "utf-8-sig", max_classes: int | None = None,
                val_fraction: float = 0.1, test_fraction: float = 0.2, split_seed: int = 0,
                standardise_targets: bool = True) -> list[TaskData]:
    """``path``: the table; ``targets``: its target columns, one task each (in this order);
    ``kinds``: some targets' kinds (others inferred); ``drop``: columns that are neither;
    ``missing``: the cell texts that mean missing (default ``'', '?', 'NA', 'nan'``)."""
    from sharewise.data.columns import MAX_CLASSES, MISSING_TOKENS
    from sharewise.data.csv_tasks import load_label_table
    from sharewise.data.splits import minmax_scale
    from sharewise.tasks.scaling import standardise_targets as standardise

    if isinstance(targets, str):
        targets = [targets]
    source = resolve_table_path(path, data_dir)
    table = load_label_table(source, list(targets), kinds, missing=tuple(missing or MISSING_TOKENS), sep=sep,
                             encoding=encoding, drop=tuple(drop), max_classes=max_classes or MAX_CLASSES)
    n = len(table.x)
    parts = three_way_split(np.arange(n), val_fraction, test_fraction, split_seed, stratify=False)
    if min(len(parts[0]), len(parts[2])) == 0:
        raise DataError(f"{source}: {n} rows are too few to split {1 - val_fraction - test_fraction:g}/"
                        f"{val_fraction:g}/{test_fraction:g} into train/val/test (a split would be empty); "
                        "add rows or change tasks.options.val_fraction / test_fraction.")
    xs = [torch.from_numpy(np.ascontiguousarray(a)) for a in minmax_scale(*(table.x[p] for p in parts))]
    notes = {"source": str(source), "split": f"one seeded split of {n} rows for every task: "
             f"{len(parts[0])}/{len(parts[1])}/{len(parts[2])} (split_seed {split_seed})",
             "preprocessing": "; ".join(table.notes) + "."}
    tasks = []
    for name, tgt in table.targets.items():
        _check_split(source, name, tgt.kind, tgt.y, parts)
        n_out = 1 if tgt.kind in ("binary", "regression") else len(tgt.class_names)
        dtype = torch.float32 if tgt.kind == "regression" else torch.long
        ys = [torch.as_tensor(tgt.y[p]).to(dtype) for p in parts]
        task = TaskData(name, tgt.kind, n_out, xs[0], ys[0], xs[1], ys[1], xs[2], ys[2],  # type: ignore[arg-type]
                        notes={**notes, "kind_inferred": name not in (kinds or {}),
                               **({"classes": tgt.class_names} if tgt.class_names else {})})
        tasks.append(standardise(task) if standardise_targets else task)
    return tasks
