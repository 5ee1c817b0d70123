"""Learning-rate schedules: a multiplier of every parameter group's configured rate, per step.

Why: at the papers' constant Adam rate several headline runs are still falling when their step
budget ends (Omniglot-50 at 5000 and 10,000 steps, results.md §1.5), so the last evaluation is a
point on a slope. A rate that decays to ``train.min_lr_ratio`` over ``train.steps`` ends training
on a plateau within the same budget; a linear warm-up protects the first updates of freshly
initialised networks (and of large learned-structure rates) from Adam's early, noisy steps.

The multiplier is a pure function of the step (1-based) and the config, so a resumed run follows
exactly the schedule of an uninterrupted one without any state in the checkpoint. Every group is
scaled by the same factor (weights, per-task weights, architecture logits, learned loss weights):
their ratios, e.g. Gumbel-Matrix's T-times router rate, hold at every step. All updates of one
step (alternating mode's T single-task updates) share its factor.

The shapes follow ``torch.optim.lr_scheduler`` stepped once per update: step ``s`` after the
warm-up is update ``i = s - 1 - warmup`` of ``n = steps - warmup``; cosine gives
``min + (1 - min) (1 + cos(pi i / n)) / 2`` (``CosineAnnealingLR`` with ``T_max = n``), linear
``min + (1 - min) (1 - i / n)``. The warm-up rises linearly: step ``s <= warmup`` gets ``s / warmup``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

SCHEDULES = ("constant", "cosine", "linear")


def lr_factor(step: int, steps: int, schedule: str = "constant", warmup_steps: int = 0,
              min_lr_ratio: float = 0.0) -> float:
    """The multiplier of the configured learning rates at ``step`` (1-based) of ``steps``."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {schedule!r}; expected one of {SCHEDULES}")
    if warmup_steps > 0 and step <= warmup_steps:
        return step / warmup_steps
    if schedule == "constant":
        return 1.0
    n = max(steps - warmup_steps, 1)
    progress = min(max(step - 1 - warmup_steps, 0), n) / n
    if schedule == "cosine":
        shape = 0.5 * (1.0 + math.cos(math.pi * progress))
    else:
        shape = 1.0 - progress
    return min_lr_ratio + (1.0 - min_lr_ratio) * shape


def depends_on_length(schedule: str) -> bool:
    """Whether the rates depend on the planned number of steps (then a run cannot be extended
    without changing the rates of the steps it has already taken). A warm-up counts from the
    first step whatever the length, so a constant schedule with one does not."""
    return schedule != "constant"


class LRSchedule:
    """Sets the learning rate of every group of an optimiser to ``base * lr_factor(step)``.

    ``base_lrs`` are the configured rates, in the order of ``optimizer.param_groups``; they are
    kept here because loading an optimiser state replaces the group dicts (with the rates of the
    step the checkpoint was written at)."""

    def __init__(self, base_lrs: Sequence[float], steps: int, schedule: str, warmup_steps: int = 0,
                 min_lr_ratio: float = 0.0) -> None:
        self.base_lrs = [float(lr) for lr in base_lrs]
        self.steps, self.schedule = steps, schedule
        self.warmup_steps, self.min_lr_ratio = warmup_steps, min_lr_ratio
        self.active = schedule != "constant" or warmup_steps > 0

    def factor(self, step: int) -> float:
        return lr_factor(step, self.steps, self.schedule, self.warmup_steps, self.min_lr_ratio)

    def apply(self, groups: Sequence[dict[str, Any]], step: int) -> float:
        """Scale ``groups`` for ``step``; returns the factor. A constant schedule leaves the
        groups untouched (bit-identical to a run without a schedule)."""
        if not self.active:
            return 1.0
        if len(groups) != len(self.base_lrs):
            raise ValueError(f"the optimiser has {len(groups)} parameter groups, the schedule was made for "
                             f"{len(self.base_lrs)}")
        factor = self.factor(step)
        for group, base in zip(groups, self.base_lrs):
            group["lr"] = base * factor
        return factor
