"""Optimiser groups: the architecture group's learning rate is the scheme's rule, never sniffed."""

from __future__ import annotations

import pytest

from sharewise.builders import build_model
from sharewise.config import parse_config
from sharewise.data.tasksets import build_tasks
from sharewise.training.optim import build_optimizer


def _groups(scheme: str, **train: float) -> dict[str, dict]:
    cfg = parse_config({"scheme": scheme, "tasks": {"builder": "random_patterns", "options": {"n_tasks": 3}},
                        "model": {"core": {"width": 8, "depth": 2}}, "train": {"lr": 0.01, **train}})
    tasks = build_tasks(cfg.tasks.builder, data_dir=None, seed=0, options=cfg.tasks.options)
    model = build_model(cfg, tasks)
    _, groups = build_optimizer(model, cfg.train)
    arch = model.architecture_parameters()
    assert {id(p) for p in arch}.isdisjoint({id(p) for p in model.weight_parameters()})
    return {g["name"]: g for g in groups}


@pytest.mark.parametrize(("scheme", "multiple"), [("gumbel_matrix", 3.0), ("cross_stitch", 10.0), ("nddr", 1.0),
                                                  ("soft_ordering", 1.0)])
def test_architecture_lr_is_the_schemes_rule(scheme: str, multiple: float) -> None:
    groups = _groups(scheme)
    assert groups["architecture"]["lr"] == pytest.approx(0.01 * multiple)
    assert groups["architecture"]["n_params"] > 0
    assert _groups(scheme, arch_lr=0.5)["architecture"]["lr"] == 0.5  # train.arch_lr wins


def test_nddr_mixing_maps_are_architecture_parameters_like_cross_stitch_alpha() -> None:
    # 2 depths of [T*C, T*C] = [24, 24] maps (T=3 tasks, C=8 channels).
    assert _groups("nddr")["architecture"]["n_params"] == 2 * 24 * 24
    assert _groups("cross_stitch")["architecture"]["n_params"] == 2 * 3 * 3
