"""Your own tabular tasks: one CSV file per task in a folder, with a named target column.

Each file becomes a task named after the file; the task kind (binary / multiclass / regression)
is declared in ``kinds`` or inferred (the inference and its reason are recorded in the task's
notes and printed in the run summary). Scaling and splitting as for UCI-10; regression targets
are standardised on the training split unless ``standardise_targets`` is false (metrics stay in
original units). Each file gets its own split: for tasks that share rows, use the ``table`` task
set (one file, one target column per task, one split).
"""

from __future__ import annotations

from sharewise.data.tasksets._registry import make_task, register_taskset, three_way_split
from sharewise.errors import DataError
from sharewise.tasks.spec import TaskData


@register_taskset("csv_folder")
def build_csv_folder(*, data_dir: str | None = None, seed: int = 0, folder: str = "", target: str = "target",
                     kinds: dict | None = None, val_fraction: float = 0.1, test_fraction: float = 0.2,
                     split_seed: int = 0, standardise_targets: bool = True, missing: list | None = None,
                     sep: str | None = None, encoding: str = "utf-8-sig", drop: list | None = None) -> list[TaskData]:
    """``folder`` is relative to ``data_dir`` when that is given and ``folder`` is relative."""
    from pathlib import Path

    from sharewise.data.csv_tasks import load_csv_folder

    path = Path(folder).expanduser()
    if data_dir and not path.is_absolute():
        path = Path(data_dir) / path
    if not folder or not path.is_dir():
        raise DataError(f"tasks.options.folder: {str(path)!r} is not a folder; set it to a folder "
                        f"holding one CSV file per task (with a header row and a {target!r} column)")
    from sharewise.data.columns import MISSING_TOKENS
    from sharewise.tasks.scaling import standardise_targets as standardise

    tables = load_csv_folder(path, target, kinds, missing=tuple(missing or MISSING_TOKENS), sep=sep,
                             encoding=encoding, drop=tuple(drop or ()))
    tasks = []
    for offset, (name, table) in enumerate(sorted(tables.items())):
        kind = table.kind
        n_out = 1 if kind in ("binary", "regression") else table.n_classes
        if kind == "regression":
            n_out = 1 if table.y.ndim == 1 else table.y.shape[1]
        splits = three_way_split(table.y if kind != "regression" else table.y.reshape(len(table.y), -1)[:, 0],
                                 val_fraction, test_fraction, split_seed + offset, stratify=kind != "regression")
        if min(len(splits[0]), len(splits[2])) == 0:
            raise DataError(f"{table.source}: {len(table.y)} labelled rows are too few to split "
                            f"{1 - val_fraction - test_fraction:g}/{val_fraction:g}/{test_fraction:g} into "
                            "train/val/test (a split would be empty); add rows or change tasks.options."
                            "val_fraction / test_fraction.")
        notes = {"source": str(table.source), "kind_inferred": table.kind_inferred, "preprocessing": table.notes}
        task = make_task(name, kind, n_out, table.x, table.y, splits, notes=notes)  # type: ignore[arg-type]
        tasks.append(standardise(task) if standardise_targets else task)
    return tasks
