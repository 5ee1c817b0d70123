"""Three families of tasks for the task-embedding experiment (Gumbel-Matrix Sec. V-C, Figs. 5-6).

CIFAR-100 is not available offline, so the families are: 10 MNIST and 10 Fashion-MNIST
leave-one-class-out tasks (task i: 9-way classification of every class but i, never seeing i)
and Omniglot alphabets (downsampled to 28x28) as the third, more diverse family, as the CIFAR
superclass tasks were. ``family`` per task is in the task notes, for scoring the embeddings.
``max_train_per_task`` keeps CPU runs small.
"""

from __future__ import annotations

import numpy as np
import torch

from sharewise.data.tasksets._registry import register_taskset, resolve_data_dir
from sharewise.tasks.spec import TaskData


def _leave_one_out(prefix: str, family: str, split: dict, held_out: int, cap: int | None,
                   rng: np.random.Generator) -> TaskData:
    def part(x: np.ndarray, y: np.ndarray, limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        keep = np.flatnonzero(y != held_out)
        if limit is not None:
            keep = np.sort(rng.choice(keep, size=min(limit, len(keep)), replace=False))
        labels = y[keep] - (y[keep] > held_out)  # 0..8
        return torch.from_numpy(x[keep]).float().div_(255.0).unsqueeze(1), torch.from_numpy(labels).long()

    (x_tr, y_tr), (x_te, y_te) = split["train"], split["test"]
    n_val = 5000
    order = rng.permutation(len(y_tr))
    val_idx, fit_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    xf, yf = part(x_tr[fit_idx], y_tr[fit_idx], cap)
    xv, yv = part(x_tr[val_idx], y_tr[val_idx], None if cap is None else max(cap // 5, 100))
    xt, yt = part(x_te, y_te, None)
    return TaskData(f"{prefix}-no{held_out}", "multiclass", 9, xf, yf, xv, yv, xt, yt,
                    notes={"family": family, "held_out_class": held_out})


@register_taskset("latent_clusters")
def build_latent_clusters(*, data_dir: str | None = None, seed: int = 0, n_mnist: int = 10, n_fashion: int = 10,
                          n_omniglot: int = 20, max_train_per_task: int | None = 5000,
                          split_seed: int = 0) -> list[TaskData]:
    from sharewise.data.idx import load_mnist
    from sharewise.data.tasksets.omniglot_alphabets import build_omniglot_alphabets

    root = resolve_data_dir(data_dir, "MNIST, Fashion-MNIST and Omniglot")
    rng = np.random.default_rng(split_seed)
    tasks: list[TaskData] = []
    for prefix, variant, count in (("mnist", "mnist", n_mnist), ("fashion", "fashion-mnist", n_fashion)):
        if count:
            data = load_mnist(root, variant)
            tasks += [_leave_one_out(prefix, prefix, data, i, max_train_per_task, rng) for i in range(count)]
    if n_omniglot:
        for task in build_omniglot_alphabets(data_dir=str(root), seed=seed, n_alphabets=n_omniglot, image_size=28,
                                             split_seed=split_seed):
            task.notes["family"] = "omniglot"
            tasks.append(task)
    return tasks
