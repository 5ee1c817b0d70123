"""Shared-input multi-task MNIST: one transformed digit per canvas, seven tasks on the same image.

The branched-networks paper (Sec. 4) evaluates on Cityscapes / Taskonomy / CelebA, where every
task is defined on the same image; those are not available offline, so this builds a small
benchmark with the same structure from the real MNIST (or Fashion-MNIST) images. Each 28x28
digit is scaled, rotated and translated into a ``canvas x canvas`` image (one vectorised
``affine_grid`` / ``grid_sample`` call), and seven heterogeneous tasks are read off that image:

==========  ===========  =========  =====================================================
task        kind         outputs    target
==========  ===========  =========  =====================================================
digit       multiclass   10         the digit's class
parity      binary       1          class is odd
ge5         binary       1          class >= 5
position    regression   2          centre (x, y) of the digit box, canvas coords in [-1, 1]
rotation    regression   1          rotation angle / max_rotation, in [-1, 1]
scale       regression   1          box side relative to the canvas, mapped to [-1, 1]
mask        regression   m*m        ink mask at m x m resolution (fraction of ink per cell)
==========  ===========  =========  =====================================================

Expected relations (what the affinity analysis should find, see docs/results.md, section 3):
``digit``, ``parity`` and ``ge5`` are functions of the class, so they need the same
shape-identity features and should be close at every depth; ``position``, ``scale`` and
``mask`` are about *where* and *how much* ink there is (the mask determines position and
scale almost exactly), so they should form a second group; ``rotation`` needs the shape's
orientation, between the two groups. At the first block (edges), all tasks should be similar.

All tasks hold the *same* input tensors (one object per split), so the sampler's shared-input
mode feeds one batch of images to every task per step. Train/val come from MNIST's training
images, test from its test images; transforms are drawn from ``seed`` per split.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from sharewise.data.tasksets._registry import register_taskset, resolve_data_dir
from sharewise.errors import ConfigError
from sharewise.tasks.spec import TaskData

TASKS: tuple[str, ...] = ("digit", "parity", "ge5", "position", "rotation", "scale", "mask")


def place_digits(images: Tensor, canvas: int, generator: torch.Generator, min_scale: float = 0.5,
                 max_scale: float = 0.9, max_rotation: float = 45.0) -> tuple[Tensor, dict[str, Tensor]]:
    """Scale, rotate and translate each digit into a canvas; returns canvases and the parameters.

    images: float ``[N, 28, 28]`` in [0, 1]. A digit's box of side ``s * canvas`` (``s`` uniform in
    [min_scale, max_scale]) is rotated by ``theta`` (uniform, +-max_rotation degrees) and centred at
    ``c`` (uniform in [-(1-s), 1-s]^2 so that the unrotated box stays inside the canvas).
    In normalised coordinates the digit point ``q`` lands at ``p = s R(theta) q + c``, so the
    sampling grid is ``q = R(theta)^T (p - c) / s`` (what ``affine_grid`` takes).

    Returns ``([N, 1, canvas, canvas], {"scale": [N], "angle": [N] radians, "centre": [N, 2]})``.
    """
    n = images.shape[0]
    u = torch.rand(n, 4, generator=generator)  # [N, 4]
    s = min_scale + (max_scale - min_scale) * u[:, 0]  # [N]
    angle = math.radians(max_rotation) * (2 * u[:, 1] - 1)  # [N]
    centre = (2 * u[:, 2:] - 1) * (1 - s).unsqueeze(1)  # [N, 2] (x, y)
    cos, sin = angle.cos(), angle.sin()
    rot_t = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], 1)  # [N, 2, 2] = R^T
    a = rot_t / s.view(n, 1, 1)  # [N, 2, 2]
    b = -(a @ centre.unsqueeze(2))  # [N, 2, 1]
    grid = F.affine_grid(torch.cat([a, b], 2), [n, 1, canvas, canvas], align_corners=False)
    out = F.grid_sample(images.unsqueeze(1), grid, align_corners=False, padding_mode="zeros")
    return out.clamp_(0, 1), {"scale": s, "angle": angle, "centre": centre}


def _targets(labels: Tensor, canvases: Tensor, params: dict[str, Tensor], mask_size: int,
             min_scale: float, max_scale: float, max_rotation: float) -> dict[str, Tensor]:
    n, canvas = canvases.shape[0], canvases.shape[-1]
    ink = (canvases > 0.5).float()  # [N, 1, H, W]
    mask = F.adaptive_avg_pool2d(ink, mask_size).reshape(n, mask_size * mask_size)  # [N, m*m]
    mid = 0.5 * (min_scale + max_scale)
    half = 0.5 * (max_scale - min_scale)
    return {
        "digit": labels,
        "parity": labels % 2,
        "ge5": (labels >= 5).long(),
        "position": params["centre"],
        "rotation": (params["angle"] / math.radians(max_rotation)).unsqueeze(1),
        "scale": ((params["scale"] - mid) / half).unsqueeze(1),
        "mask": mask,
    }


@functools.lru_cache(maxsize=2)
def _load_mnist_cached(root: str, variant: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """MNIST arrays, read once per process (the affinity pipeline builds the tasks more than once)."""
    from sharewise.data.idx import load_mnist

    return load_mnist(root, variant=variant)


KINDS: dict[str, tuple[str, int | None]] = {
    "digit": ("multiclass", 10), "parity": ("binary", 1), "ge5": ("binary", 1),
    "position": ("regression", 2), "rotation": ("regression", 1), "scale": ("regression", 1),
    "mask": ("regression", None),
}


@register_taskset("mnist_multitask")
def build_mnist_multitask(*, data_dir: str | None = None, seed: int = 0, canvas: int = 32,
                          tasks: Sequence[str] | None = None, n_train: int = 20000, n_val: int = 2000,
                          n_test: int = 5000, mask_size: int = 8, min_scale: float = 0.5,
                          max_scale: float = 0.9, max_rotation: float = 45.0,
                          variant: str = "mnist", data_seed: int | None = None) -> list[TaskData]:
    """Seven tasks (or the ``tasks`` subset, in that order) on the same transformed digits.

    ``n_train`` / ``n_val`` / ``n_test`` pick how many images (the size option for quick tests);
    the images and transforms depend on ``data_seed`` (default: 0, the same data for every run
    seed, so runs with different seeds differ only in initialisation and batch order).
    """
    names = list(tasks) if tasks is not None else list(TASKS)
    unknown = [t for t in names if t not in TASKS]
    if unknown or not names or len(set(names)) != len(names):
        raise ConfigError(f"tasks.options.tasks: expected distinct names from {list(TASKS)}, got {names}")
    if canvas < 8 or canvas % mask_size:
        raise ConfigError(f"tasks.options.canvas must be >= 8 and a multiple of mask_size={mask_size}, "
                          f"got canvas={canvas}")
    if not 0 < min_scale <= max_scale <= 1:
        raise ConfigError(f"tasks.options: expected 0 < min_scale <= max_scale <= 1, got {min_scale}, {max_scale}")
    data = _load_mnist_cached(str(resolve_data_dir(data_dir, variant.upper())), variant)
    (x_tr, y_tr), (x_te, y_te) = data["train"], data["test"]
    if n_train + n_val > len(x_tr) or n_test > len(x_te) or min(n_train, n_test) < 1 or n_val < 0:
        raise ConfigError(f"tasks.options: n_train + n_val must be <= {len(x_tr)} and 1 <= n_test <= {len(x_te)}, "
                          f"got n_train={n_train}, n_val={n_val}, n_test={n_test}")
    gen = torch.Generator().manual_seed(0 if data_seed is None else data_seed)
    pick = torch.randperm(len(x_tr), generator=gen)[: n_train + n_val].numpy()
    pick_test = torch.randperm(len(x_te), generator=gen)[:n_test].numpy()
    splits = {"train": (x_tr[pick[:n_train]], y_tr[pick[:n_train]]),
              "val": (x_tr[pick[n_train:]], y_tr[pick[n_train:]]),
              "test": (x_te[pick_test], y_te[pick_test])}
    xs: dict[str, Tensor] = {}
    ys: dict[str, dict[str, Tensor]] = {}
    for split, (img, lab) in splits.items():
        images = torch.from_numpy(np.ascontiguousarray(img)).float() / 255.0  # [N, 28, 28]
        canvases, params = place_digits(images, canvas, gen, min_scale, max_scale, max_rotation)
        xs[split] = canvases.contiguous()  # [N, 1, canvas, canvas]
        ys[split] = _targets(torch.from_numpy(np.asarray(lab, dtype=np.int64)), canvases, params,
                             mask_size, min_scale, max_scale, max_rotation)
    out = []
    for name in names:
        kind, n_out = KINDS[name]
        n_out = mask_size * mask_size if n_out is None else n_out
        out.append(TaskData(name, kind, n_out,  # type: ignore[arg-type]
                            xs["train"], ys["train"][name], xs["val"], ys["val"][name],
                            xs["test"], ys["test"][name], notes={"canvas": canvas, "variant": variant}))
    return out
