"""Task sets: named builders that turn a data directory and options into a list of TaskData.

A task set is one module in ``sharewise.data.tasksets`` with a builder decorated
``@register_taskset(name)``; the package is scanned for them (:mod:`sharewise.registry`, which
also says how to register one that lives outside the package). A builder has the signature
``builder(*, data_dir: str | None, seed: int, **options)``; its keyword options are what a
config's ``tasks.options`` may set.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from sharewise.errors import ConfigError, DataError
from sharewise.registry import OptionCheck, Registry
from sharewise.tasks.spec import TaskData, TaskKind

TasksetBuilder = Callable[..., list[TaskData]]
TASKSETS: Registry[TasksetBuilder] = Registry("task set", "sharewise.data.tasksets", "sharewise.tasksets")
BUILDER_ARGUMENTS = ("data_dir", "seed")  # passed by build_tasks, not options


def register_taskset(name: str, check: OptionCheck | None = None) -> Callable[[TasksetBuilder], TasksetBuilder]:
    """Decorator registering a task-set builder under ``name`` (``check``: see ``sharewise.registry``)."""
    return TASKSETS.register(name, check)


def available_tasksets() -> list[str]:
    return TASKSETS.names()


def taskset_builder(name: str) -> TasksetBuilder:
    return TASKSETS.get(name)


def build_tasks(name: str, *, data_dir: str | None, seed: int, options: dict) -> list[TaskData]:
    from sharewise.tasks.spec import check_task_list

    return check_task_list(taskset_builder(name)(data_dir=data_dir, seed=seed, **options), name)


def resolve_data_dir(data_dir: str | None, what: str) -> Path:
    """The directory named by ``--data-dir`` or ``SHAREWISE_DATA_DIR``, checked to exist."""
    chosen = data_dir or os.environ.get("SHAREWISE_DATA_DIR")
    if not chosen:
        raise DataError(
            f"the {what} tasks read real data, but no data directory was given: pass --data-dir DIR "
            f"or set SHAREWISE_DATA_DIR to a folder holding {what}'s files (see docs/data.md)"
        )
    path = Path(chosen).expanduser()
    if not path.is_dir():
        state = "is a file, not a folder" if path.exists() else "does not exist"
        raise DataError(f"data directory {str(path)!r} {state}; pass --data-dir with the folder "
                        f"that holds {what}'s files")
    return path


def make_task(name: str, kind: TaskKind, n_outputs: int, x: np.ndarray, y: np.ndarray,
              splits: Sequence[np.ndarray], scale: bool = True,
              notes: dict | None = None) -> TaskData:
    """Build a TaskData from arrays and (train, val, test) index arrays, min-max scaling on train."""
    from sharewise.data.splits import minmax_scale

    tr, va, te = (np.asarray(s) for s in splits)
    x = np.asarray(x, dtype=np.float32)
    xs = [x[tr], x[va], x[te]]
    if scale:
        xs = list(minmax_scale(*xs))
    ydt = torch.float32 if kind == "regression" else torch.long
    ys = [torch.as_tensor(np.asarray(y)[s]).to(ydt) for s in (tr, va, te)]
    tx = [torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32) for a in xs]
    return TaskData(name, kind, n_outputs, tx[0], ys[0], tx[1], ys[1], tx[2], ys[2], notes=notes or {})


def three_way_split(y: np.ndarray, val_fraction: float, test_fraction: float, seed: int,
                    stratify: bool) -> list[np.ndarray]:
    from sharewise.data.splits import fixed_split

    train_fraction = 1.0 - val_fraction - test_fraction
    if train_fraction <= 0 or val_fraction < 0 or test_fraction <= 0:
        raise ConfigError(f"val_fraction {val_fraction} and test_fraction {test_fraction} must be >= 0 / > 0 "
                          f"and leave a training split (sum < 1)")
    if val_fraction == 0:
        tr, te = fixed_split(y, [train_fraction, test_fraction], seed=seed, stratify=stratify)
        return [tr, np.zeros(0, dtype=np.int64), te]
    return list(fixed_split(y, [train_fraction, val_fraction, test_fraction], seed=seed, stratify=stratify))
