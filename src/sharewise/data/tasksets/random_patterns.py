"""Random-pattern tasks (Sec. 3.2, Fig. 2): how many random labels can the joint model fit?

Each task has n samples with x ~ U[0, 1]^m and y ~ U{0, 1}; nothing is shared between tasks'
data, so they are the most disparate tasks possible. The metric is *training* error (fitting
capacity): train, validation and test splits are the same n samples. With ``m=128`` and a linear
core (``model.core.activation=linear``) or ``m=16`` and ReLU, as in the paper.
"""

from __future__ import annotations

import numpy as np
import torch

from sharewise.data.tasksets._registry import register_taskset
from sharewise.tasks.spec import TaskData


@register_taskset("random_patterns")
def build_random_patterns(*, data_dir: str | None = None, seed: int = 0, n_samples: int = 100,
                          dim: int = 16, n_tasks: int = 2, data_seed: int | None = None) -> list[TaskData]:
    """``data_seed`` fixes the patterns (default: the run seed, a new draw per trial)."""
    rng = np.random.default_rng(seed if data_seed is None else data_seed)
    tasks = []
    for t in range(n_tasks):
        x = torch.as_tensor(rng.uniform(0, 1, size=(n_samples, dim)), dtype=torch.float32)
        y = torch.as_tensor(rng.integers(0, 2, size=n_samples), dtype=torch.long)
        tasks.append(TaskData(f"random{t + 1}", "binary", 1, x, y, x, y, x, y,
                              notes={"split": "train = val = test (fitting capacity)"}))
    return tasks
