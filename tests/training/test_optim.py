"""Optimiser groups: the architecture group's learning rate is the scheme's rule, never sniffed."""

from __future__ import annotations

import pytest
import torch

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


def test_task_lr_puts_the_stacked_per_task_weights_in_their_own_group() -> None:
    cfg = parse_config({"scheme": "parallel", "tasks": {"builder": "random_patterns", "options": {"n_tasks": 3}},
                        "model": {"core": {"width": 8, "depth": 2}},
                        "train": {"lr": 0.01, "task_lr": 0.2, "mode": "alternating"}})
    tasks = build_tasks(cfg.tasks.builder, data_dir=None, seed=0, options=cfg.tasks.options)
    model = build_model(cfg, tasks)
    opt, groups = build_optimizer(model, cfg.train)
    named = {g["name"]: g for g in groups}
    per_task = sum(p.numel() for p in model.task_parameters())
    assert per_task > 0 and named["task_weights"] == {"name": "task_weights", "lr": 0.2, "n_params": per_task}
    assert named["weights"]["lr"] == 0.01
    assert named["weights"]["n_params"] + per_task == sum(p.numel() for p in model.weight_parameters())
    # Adam's first step moves every element by lr (sign of the gradient): 0.2 per-task, 0.01 shared.
    before = {id(p): p.detach().clone() for p in model.parameters()}
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    opt.step([1])
    stacked = {id(p) for p in model.task_parameters()}
    for p in model.parameters():
        moved = (before[id(p)] - p.detach()).abs()
        if id(p) in stacked:
            assert torch.allclose(moved[1], torch.full_like(moved[1], 0.2), atol=1e-6)
            assert torch.equal(moved[0], torch.zeros_like(moved[0]))  # task 0 was not in the update
        else:
            assert torch.allclose(moved, torch.full_like(moved, 0.01), atol=1e-6)
    assert "task_weights" not in _groups("parallel")  # default: one weights group, as before
