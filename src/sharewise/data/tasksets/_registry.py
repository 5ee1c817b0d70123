"""Task sets: named builders that turn a data directory and options into a list of TaskData.

A builder has the signature ``builder(*, data_dir: str | None, seed: int, **options)``; its
keyword options are what a config's ``tasks.options`` may set.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from sharewise.errors import ConfigError, DataError
from sharewise.tasks.spec import TaskData, TaskKind

TasksetBuilder = Callable[..., list[TaskData]]
_TASKSETS: dict[str, TasksetBuilder] = {}


def register_taskset(name: str) -> Callable[[TasksetBuilder], TasksetBuilder]:
    def wrap(builder: TasksetBuilder) -> TasksetBuilder:
        _TASKSETS[name] = builder
        return builder

    return wrap


def _load() -> None:
    from sharewise.data.tasksets import csv_folder, demo, mnist_pairs, random_patterns, uci10  # noqa: F401
    from sharewise.data.tasksets import latent_clusters, mnist_variants, omniglot_alphabets  # noqa: F401
    from sharewise.data.tasksets import synthetic_relatedness  # noqa: F401
    from sharewise.data.tasksets import mnist_multitask, table  # noqa: F401


def available_tasksets() -> list[str]:
    _load()
    return sorted(_TASKSETS)


def taskset_builder(name: str) -> TasksetBuilder:
    _load()
    if name not in _TASKSETS:
        raise ConfigError(f"unknown task set {name!r}; valid task sets: {', '.join(sorted(_TASKSETS))}")
    return _TASKSETS[name]


def build_tasks(name: str, *, data_dir: str | None, seed: int, options: dict) -> list[TaskData]:
    return taskset_builder(name)(data_dir=data_dir, seed=seed, **options)


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
        raise DataError(f"data directory {str(path)!r} does not exist; pass --data-dir with the folder "
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
