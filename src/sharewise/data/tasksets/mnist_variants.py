"""4-MNISTs (Gumbel-Matrix paper, Sec. V-A): MNIST, MNIST, MNIST-rot, MNIST-rot.

MNIST-rot takes MNIST's input-output pairs with every image rotated by 90 degrees *clockwise*
(as the paper says; the authors' code's ``rot90`` turns counter-clockwise, also a valid rotated
task). Copies of a task share their data and differ only in the order the sampler draws it.
Images are [1, 28, 28] in [0, 1]. ``val_fraction`` of the official training set (fixed,
stratified) is held out for checkpoint selection; the paper reports accuracy on the official test
set, as we do. ``variants`` may also name ``fashion`` / ``fashion_rot``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from sharewise.data.tasksets._registry import register_taskset, resolve_data_dir
from sharewise.errors import ConfigError
from sharewise.tasks.spec import TaskData

VARIANTS = ("mnist", "mnist_rot", "fashion", "fashion_rot")


def _images(x: np.ndarray, rotate: bool) -> torch.Tensor:
    t = torch.from_numpy(x).float().div_(255.0).unsqueeze(1)  # [N, 1, 28, 28]
    return torch.rot90(t, k=-1, dims=(2, 3)).contiguous() if rotate else t  # k=-1: clockwise


@register_taskset("mnist_variants")
def build_mnist_variants(*, data_dir: str | None = None, seed: int = 0,
                         variants: Sequence[str] = ("mnist", "mnist", "mnist_rot", "mnist_rot"),
                         val_fraction: float = 1 / 12, split_seed: int = 0,
                         max_train_per_task: int | None = None) -> list[TaskData]:
    from sharewise.data.idx import load_mnist
    from sharewise.data.splits import fixed_split

    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ConfigError(f"tasks.options.variants: unknown variant(s) {unknown}; valid: {list(VARIANTS)}")
    root = resolve_data_dir(data_dir, "MNIST")
    cache: dict[str, tuple[torch.Tensor, ...]] = {}
    tasks = []
    for i, variant in enumerate(variants):
        if variant not in cache:
            data = load_mnist(root, "fashion-mnist" if variant.startswith("fashion") else "mnist")
            (x_tr, y_tr), (x_te, y_te) = data["train"], data["test"]
            fit, val = fixed_split(y_tr, [1 - val_fraction, val_fraction], seed=split_seed, stratify=True)
            if max_train_per_task is not None:
                fit = fit[:max_train_per_task]
            rot = variant.endswith("_rot")
            x_all = _images(x_tr, rot)
            cache[variant] = (x_all[fit], torch.from_numpy(y_tr[fit]).long(), x_all[val],
                              torch.from_numpy(y_tr[val]).long(), _images(x_te, rot), torch.from_numpy(y_te).long())
        tensors = cache[variant]  # copies of a task share tensors: no extra memory
        tasks.append(TaskData(f"{variant}{i + 1}", "multiclass", 10, *tensors,
                              notes={"rotation": "90 degrees clockwise" if variant.endswith("_rot") else "none"}))
    return tasks
