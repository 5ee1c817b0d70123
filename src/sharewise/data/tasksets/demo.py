"""The demo task set: data that ships with scikit-learn plus one generated regression task.

No download is needed, so ``sharewise demo`` works on a fresh machine. Tasks: iris (3 classes),
wine (3), breast cancer (binary), digits (10 classes, 8x8 images as 64 features) and
``friedman1`` (a generated regression task, Friedman 1991), each with its own input width:
superficially unrelated tasks, as in the paper's UCI experiment.

The four data sets are read from the CSV files inside the installed scikit-learn package and
friedman1 is generated with NumPy exactly as ``sklearn.datasets.make_friedman1`` does, without
importing scikit-learn: its import costs about 0.7 s, more than a short demo run's training
(``tests/data/test_demo_taskset.py`` checks both against scikit-learn's own loaders).
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sharewise.data.tasksets._registry import make_task, register_taskset, three_way_split
from sharewise.tasks.spec import TaskData

DEMO_TASKS = ("iris", "wine", "breast_cancer", "digits", "friedman1")
_CSV_FILES = {"iris": "iris.csv", "wine": "wine_data.csv", "breast_cancer": "breast_cancer.csv"}


def _sklearn_data_dir() -> Path:
    """scikit-learn's bundled data folder, found without importing the package."""
    from sharewise.errors import DataError

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the demo task set reads the data bundled with scikit-learn, which is not installed; "
                        "install it (pip install scikit-learn)")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


def load_bundled(name: str) -> tuple[np.ndarray, np.ndarray]:
    """``sklearn.datasets.load_<name>(return_X_y=True)`` for iris, wine, breast_cancer, digits."""
    folder = _sklearn_data_dir()
    if name == "digits":  # 1797 rows of 64 pixel values and the digit, comma-separated
        with gzip.open(folder / "digits.csv.gz", "rt") as f:
            data = np.loadtxt(f, delimiter=",")
        return data[:, :-1], data[:, -1].astype(int)
    with open(folder / _CSV_FILES[name], encoding="utf-8") as f:  # header: n_samples, n_features, names
        rows = list(csv.reader(f))[1:]
    table = np.asarray(rows, dtype=np.float64)
    return table[:, :-1], table[:, -1].astype(int)


def make_friedman1(n_samples: int, n_features: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``sklearn.datasets.make_friedman1(..., random_state=seed)``: the same draws, the same values."""
    rng = np.random.RandomState(seed)
    x = rng.uniform(size=(n_samples, n_features))
    y = (10 * np.sin(np.pi * x[:, 0] * x[:, 1]) + 20 * (x[:, 2] - 0.5) ** 2 + 10 * x[:, 3] + 5 * x[:, 4]
         + noise * rng.standard_normal(size=n_samples))
    return x, y


@register_taskset("demo")
def build_demo(*, data_dir: str | None = None, seed: int = 0, names: Sequence[str] = DEMO_TASKS,
               val_fraction: float = 0.15, test_fraction: float = 0.25, split_seed: int = 0) -> list[TaskData]:
    """The split is fixed by ``split_seed`` (not the run seed), so seeds vary only training."""
    from sharewise.errors import ConfigError

    tasks = []
    for name in names:
        if name == "friedman1":
            x, y = make_friedman1(n_samples=600, n_features=10, noise=0.5, seed=split_seed)
            y = (y - y.mean()) / y.std()
            kind, n_out, stratify = "regression", 1, False
        elif name in ("iris", "wine", "breast_cancer", "digits"):
            x, y = load_bundled(name)
            n_classes = int(np.max(y)) + 1
            kind, n_out, stratify = ("binary", 1, True) if n_classes == 2 else ("multiclass", n_classes, True)
        else:
            raise ConfigError(f"tasks.options.names: unknown demo task {name!r}; valid: {list(DEMO_TASKS)}")
        splits = three_way_split(y, val_fraction, test_fraction, split_seed, stratify)
        tasks.append(make_task(name, kind, n_out, x, y, splits, notes={"source": "scikit-learn"}))  # type: ignore[arg-type]
    return tasks
