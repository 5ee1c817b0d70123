"""MNIST digit pairs (Sec. 4.1, Fig. 4a): binary tasks "digit a vs digit b".

Digits are drawn without replacement within a task and with replacement across tasks (App. A.1),
so a set of k tasks is one of 45^k; the set is drawn from ``pairs_seed`` (default: the run seed,
a new set per trial as in the paper) unless ``pairs`` lists them. Train/test are MNIST's
official train/test restricted to the two digits; ``val_fraction`` of the training part (fixed,
stratified) is held out for checkpoint selection. Pixels scaled to [0, 1]; label 0 = digit a.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sharewise.data.tasksets._registry import make_task, register_taskset, resolve_data_dir
from sharewise.errors import ConfigError
from sharewise.tasks.spec import TaskData


def draw_pairs(n_tasks: int, seed: int) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    return [tuple(int(d) for d in rng.choice(10, size=2, replace=False)) for _ in range(n_tasks)]  # type: ignore[misc]


@register_taskset("mnist_pairs")
def build_mnist_pairs(*, data_dir: str | None = None, seed: int = 0, n_tasks: int = 10,
                      pairs: Sequence[Sequence[int]] | None = None, pairs_seed: int | None = None,
                      val_fraction: float = 0.1, variant: str = "mnist",
                      max_train_per_task: int | None = None) -> list[TaskData]:
    """``max_train_per_task`` caps the training samples per task (for quick runs and tests)."""
    from sharewise.data.idx import load_mnist
    from sharewise.data.splits import fixed_split

    root = resolve_data_dir(data_dir, variant.upper())
    data = load_mnist(root, variant=variant)
    chosen = [tuple(p) for p in pairs] if pairs else draw_pairs(n_tasks, seed if pairs_seed is None else pairs_seed)
    (x_tr, y_tr), (x_te, y_te) = data["train"], data["test"]
    tasks = []
    seen: dict[str, int] = {}
    for a, b in chosen:
        if len({a, b}) != 2 or not {a, b} <= set(range(10)):
            raise ConfigError(f"tasks.options.pairs: expected two different digits 0-9, got {[a, b]}")
        tr = np.flatnonzero((y_tr == a) | (y_tr == b))
        te = np.flatnonzero((y_te == a) | (y_te == b))
        lab_tr = (y_tr[tr] == b).astype(np.int64)
        fit, val = fixed_split(lab_tr, [1 - val_fraction, val_fraction], seed=10 * a + b, stratify=True)
        if max_train_per_task is not None:
            fit = fit[:max_train_per_task]
        x = np.concatenate([x_tr[tr], x_te[te]]).reshape(-1, 784).astype(np.float32) / 255.0
        y = np.concatenate([lab_tr, (y_te[te] == b).astype(np.int64)])
        test_idx = np.arange(len(tr), len(tr) + len(te))
        name = f"{a}v{b}"
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:  # pairs are drawn with replacement across tasks: the same pair twice
            name = f"{name}-{seen[name]}"
        tasks.append(make_task(name, "binary", 1, x, y, [fit, val, test_idx], scale=False,
                               notes={"digits": [a, b]}))
    return tasks
