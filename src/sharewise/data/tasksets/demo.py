"""The demo task set: data that ships with scikit-learn plus one generated regression task.

No download is needed, so ``sharewise demo`` works on a fresh machine. Tasks: iris (3 classes),
wine (3), breast cancer (binary), digits (10 classes, 8x8 images as 64 features) and
``friedman1`` (a generated regression task, Friedman 1991), each with its own input width:
superficially unrelated tasks, as in the paper's UCI experiment.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sharewise.data.tasksets._registry import make_task, register_taskset, three_way_split
from sharewise.tasks.spec import TaskData

DEMO_TASKS = ("iris", "wine", "breast_cancer", "digits", "friedman1")


@register_taskset("demo")
def build_demo(*, data_dir: str | None = None, seed: int = 0, names: Sequence[str] = DEMO_TASKS,
               val_fraction: float = 0.15, test_fraction: float = 0.25, split_seed: int = 0) -> list[TaskData]:
    """The split is fixed by ``split_seed`` (not the run seed), so seeds vary only training."""
    from sklearn import datasets
    from sharewise.errors import ConfigError

    tasks = []
    for name in names:
        if name == "friedman1":
            x, y = datasets.make_friedman1(n_samples=600, n_features=10, noise=0.5, random_state=split_seed)
            y = (y - y.mean()) / y.std()
            kind, n_out, stratify = "regression", 1, False
        elif name in ("iris", "wine", "breast_cancer", "digits"):
            x, y = getattr(datasets, f"load_{name}")(return_X_y=True)
            n_classes = int(np.max(y)) + 1
            kind, n_out, stratify = ("binary", 1, True) if n_classes == 2 else ("multiclass", n_classes, True)
        else:
            raise ConfigError(f"tasks.options.names: unknown demo task {name!r}; valid: {list(DEMO_TASKS)}")
        splits = three_way_split(y, val_fraction, test_fraction, split_seed, stratify)
        tasks.append(make_task(name, kind, n_out, x, y, splits, notes={"source": "scikit-learn"}))  # type: ignore[arg-type]
    return tasks
