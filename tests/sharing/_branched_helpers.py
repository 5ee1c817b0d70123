"""Small models for the branched / cross-stitch / NDDR tests (shared 1x8x8 inputs, mixed task kinds)."""

from __future__ import annotations

from functools import partial
from typing import Any

import torch

from sharewise.builders import _conv_bank, build_model
from sharewise.components.layer_bank import DenseLayerBank
from sharewise.config import parse_config
from sharewise.sharing import CoreSpec
from sharewise.tasks.spec import TaskData

KINDS = [("a", "multiclass", 3), ("b", "binary", 1), ("c", "regression", 2), ("d", "regression", 1)]


def shared_tasks(n: int = 12, seed: int = 0) -> list[TaskData]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 8, 8, generator=g)  # one input tensor for every task
    out = []
    for name, kind, k in KINDS:
        if kind == "multiclass":
            y = torch.randint(0, k, (n,), generator=g)
        elif kind == "binary":
            y = torch.randint(0, 2, (n,), generator=g)
        else:
            y = torch.randn(n, k, generator=g)
        out.append(TaskData(name, kind, k, x, y, x, y, x, y))  # type: ignore[arg-type]
    return out


def conv_cfg(scheme: str, **scheme_options: Any) -> dict[str, Any]:
    return {"scheme": scheme, "scheme_options": scheme_options, "tasks": {"builder": "demo"},
            "model": {"encoder": {"kind": "channel_pad"},
                      "core": {"kind": "conv", "width": 4, "depth": 3, "kernel_size": 3, "pool": True}},
            "train": {"steps": 2, "batch_size": 4, "eval_every": 1}}


def build(scheme: str, seed: int = 0, **scheme_options: Any):  # -> MultiTaskModel
    torch.manual_seed(seed)
    return build_model(parse_config(conv_cfg(scheme, **scheme_options)), shared_tasks())


def conv_core(depth: int = 3, channels: int = 4) -> CoreSpec:
    return CoreSpec(partial(_conv_bank, channels=channels, kernel_size=3, pool=False), depth, (channels, 6, 6))


def dense_core(depth: int = 2, width: int = 5) -> CoreSpec:
    return CoreSpec(partial(DenseLayerBank, width=width), depth, (width,))
