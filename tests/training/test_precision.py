"""train.precision: bf16 autocast in the training forward pass, float32 everywhere else."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from sharewise.config import parse_config
from sharewise.errors import ConfigError
from sharewise.runner import prepare
from sharewise.training.trainer import Trainer


def trainer_for(tiny: Any, **train: Any) -> Trainer:
    cfg, tasks, model = prepare(tiny(**train), None)
    return Trainer(cfg, model, tasks)


def test_default_is_fp32_and_other_values_are_refused(tiny: Any) -> None:
    assert parse_config(tiny()).train.precision == "fp32"
    with pytest.raises(ConfigError, match="precision"):
        parse_config(tiny(precision="fp16"))


def test_bf16_runs_the_core_in_bfloat16_and_keeps_float32_master_state(tiny: Any) -> None:
    trainer = trainer_for(tiny, precision="bf16")
    seen: list[torch.dtype] = []
    trainer.model.scheme.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    for step in (1, 2):
        loss = trainer.train_step(step)
    assert seen == [torch.bfloat16, torch.bfloat16]  # the stacked core's matmuls ran in bf16
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in trainer.model.parameters())
    parts = [p for p in trainer.optimizer.state_dict().values() if p]  # shared and per-task state
    states = [v for part in parts for s in part["state"].values() for v in s.values()
              if isinstance(v, torch.Tensor) and v.is_floating_point() and v.dim() > 0]
    assert states and all(v.dtype == torch.float32 for v in states)
    assert isinstance(loss, float) and loss == loss  # finite float32 loss value


def test_bf16_step_matches_fp32_to_bfloat16_precision(tiny: Any) -> None:
    """Same seed and batch: the bf16 loss and update agree with fp32's to bf16's ~3 digits.
    SGD's first update is lr * gradient, so this compares the gradients (Adam's first step is
    lr * sign(gradient), which flips for near-zero entries under any rounding)."""
    runs = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        trainer = trainer_for(tiny, precision=precision, lr=1e-2, optimizer="sgd")
        before = [p.detach().clone() for p in trainer.model.parameters()]
        torch.manual_seed(1)  # same dropout masks
        loss = trainer.train_step(1)
        delta = torch.cat([(p.detach() - b).flatten() for p, b in zip(trainer.model.parameters(), before)])
        runs[precision] = (loss, delta)
    (l32, d32), (l16, d16) = runs["fp32"], runs["bf16"]
    assert l16 == pytest.approx(l32, rel=2e-2)
    assert not torch.equal(d16, d32)  # bf16 did change the arithmetic ...
    assert torch.nn.functional.cosine_similarity(d16, d32, dim=0) > 0.99  # ... not the direction


def test_explicit_fp32_is_bit_identical_to_the_default(tiny: Any) -> None:
    losses = []
    for train in ({}, {"precision": "fp32"}):
        torch.manual_seed(0)
        trainer = trainer_for(tiny, **train)
        losses.append([trainer.train_step(s) for s in (1, 2, 3)])
    assert losses[0] == losses[1]
