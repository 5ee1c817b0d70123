"""Omniglot alphabets as tasks (soft-ordering Sec. 4.3; Gumbel-Matrix Sec. V-B).

Each alphabet is a multiclass task over its characters. ``n_alphabets`` takes the first alphabets
of the soft-ordering paper's fixed order (App. A.3; its first 20 are the Gumbel-Matrix tasks)
unless ``alphabets`` names them. Each character's 20 drawings are split ``counts`` =
train/val/test (Gumbel-Matrix: 10/4/6, i.e. 50/20/30 %), seeded per alphabet from
``split_seed``. Images: [1, S, S], strokes = 1; ``image_size`` < 105 is the documented reduced
setting for CPUs (area-averaged downsampling). ``pixel_max`` is the ink value (background 0):
1 by default; 255 feeds the 8-bit range. ``white_background=True`` keeps the scans' own polarity
(paper = ``pixel_max``, strokes 0; the papers do not say which they fed). Why the scale matters
(results §1.5): the soft-ordering paper's network has no normalisation, so the input's scale sets
the initial activations' scale; at 1, Omniglot-50 at a batch of one image per task starts with
features ~0.006 and Adam's first ~200 steps switch off every ReLU of soft ordering (the run stays
at chance); at 255 they survive (and parallel ordering, whose initial logits are then huge, starts
late).

``lazy=True`` returns streamed tasks (:class:`~sharewise.data.streaming.DatasetTask`) that decode
each image from the zip only when a DataLoader worker fetches it (``train.data_workers``): the same
images, labels and split, so the same batches for the same seed, without holding the set in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from sharewise.data.tasksets._registry import register_taskset, resolve_data_dir
from sharewise.errors import ConfigError
from sharewise.tasks.spec import TaskData


@register_taskset("omniglot_alphabets")
def build_omniglot_alphabets(*, data_dir: str | None = None, seed: int = 0, n_alphabets: int = 20,
                             alphabets: Sequence[str] | None = None, image_size: int = 105,
                             counts: Sequence[int] = (10, 4, 6), split_seed: int = 0,
                             lazy: bool = False, pixel_max: float = 1.0,
                             white_background: bool = False) -> list[Any]:
    from sharewise.data.omniglot import (OMNIGLOT_PAPER_ORDER, alphabet_seed, load_omniglot, omniglot_split,
                                         rescale_pixels)

    if isinstance(pixel_max, bool) or not isinstance(pixel_max, (int, float)) or not 0 < pixel_max < float("inf"):
        raise ConfigError(f"omniglot_alphabets pixel_max must be a positive number (the ink value: 1, or 255 for "
                          f"the 8-bit range), got {pixel_max!r}")
    if not isinstance(white_background, bool):
        raise ConfigError(f"omniglot_alphabets white_background must be true or false, got {white_background!r}")
    root = resolve_data_dir(data_dir, "Omniglot")
    names = list(alphabets) if alphabets else list(OMNIGLOT_PAPER_ORDER[:n_alphabets])
    if lazy:
        return _lazy(root, names, image_size, counts, split_seed, float(pixel_max), white_background)
    data = load_omniglot(root, alphabets=names, image_size=None if image_size == 105 else image_size)
    tasks = []
    for name in names:
        alpha = data.alphabets[name]
        parts = omniglot_split(alpha.char_labels, alpha.drawing_ids, counts, alphabet_seed(split_seed, name))
        x = rescale_pixels(torch.from_numpy(alpha.images).float().unsqueeze(1), float(pixel_max), white_background)
        y = torch.from_numpy(alpha.char_labels).long()
        tr, va, te = (torch.from_numpy(p) for p in parts)
        tasks.append(TaskData(name, "multiclass", alpha.n_characters, x[tr], y[tr], x[va], y[va], x[te], y[te],
                              notes={"split": list(counts), "image_size": image_size, "part": alpha.part,
                                     "pixel_max": float(pixel_max), "white_background": white_background}))
    return tasks


def _lazy(root: Path, names: list[str], image_size: int, counts: Sequence[int], split_seed: int,
          pixel_max: float, white_background: bool) -> list[Any]:
    from torch.utils.data import Subset

    from sharewise.data.omniglot import alphabet_members, alphabet_seed, index_omniglot, omniglot_split
    from sharewise.data.omniglot_lazy import OmniglotImages
    from sharewise.data.streaming import DatasetTask

    _, owner, indexes, _ = index_omniglot(root, names)
    tasks = []
    for name in names:
        index = indexes[owner[name]]
        members, labels, drawings, chars = alphabet_members(name, index)
        images = OmniglotImages(index, members, labels, None if image_size == 105 else image_size, pixel_max,
                                white_background)
        tr, va, te = (Subset(images, p.tolist())
                      for p in omniglot_split(labels, drawings, counts, alphabet_seed(split_seed, name)))
        tasks.append(DatasetTask(name, "multiclass", len(chars), tr, va, te, (1, image_size, image_size),
                                 notes={"split": list(counts), "image_size": image_size, "part": owner[name],
                                        "pixel_max": pixel_max,
                                        "white_background": white_background,
                                        "lazy": f"decoded image by image from {index.where}"}))
    return tasks
