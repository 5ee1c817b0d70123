"""Optimiser with named parameter groups: weights, and the scheme's architecture parameters.

Architecture parameters (soft-order logits, allocation logits) get their own group and learning
rate: ``train.arch_lr`` if set, else the scheme's rule ``SharingScheme.architecture_lr(train.lr)``
(Gumbel-Matrix: T times, cross-stitch: 10 times, the others: ``train.lr``).

With ``train.task_lr`` set, the per-task weights stacked on the task axis (heads, encoders) get a
group ``task_weights`` with that rate. Why: in alternating mode a head gets one update per step
while the shared weights get T, the same imbalance the Gumbel-Matrix paper corrects for its
allocation logits with a T-times router rate. On a small network with a short budget the shared
core can collapse (features driven to zero, loss at chance) before slow heads learn; results.md
§2.6 measures it on reduced Omniglot-20.
"""

from __future__ import annotations

from typing import Any

from sharewise.config.schema import TrainConfig
from sharewise.model import MultiTaskModel
from sharewise.training.task_optim import TaskSlicedOptimizer


def architecture_lr(model: MultiTaskModel, train: TrainConfig) -> float:
    if train.arch_lr is not None:
        return train.arch_lr
    return float(model.scheme.architecture_lr(train.lr))


def build_optimizer(model: MultiTaskModel, train: TrainConfig) -> tuple[TaskSlicedOptimizer, list[dict[str, Any]]]:
    """Returns the optimiser and a description of its groups (name, lr, parameter count).

    What belongs to some tasks (``model.parameter_owners()``: per-task encoders, heads, logits,
    single-task copies, branches) gets per-task optimiser state, so an update of some tasks
    leaves the others' parameters and state untouched (alternating mode)."""
    per_task = {id(p) for p in model.task_parameters()}  # stacked on the task axis: train.task_lr
    weights = model.weight_parameters()
    if train.task_lr is None:
        groups = [{"name": "weights", "params": weights, "lr": train.lr, "weight_decay": train.weight_decay}]
    else:  # per-task weights in a group of their own (alternating mode: see TrainConfig.task_lr)
        groups = [{"name": "weights", "params": [p for p in weights if id(p) not in per_task], "lr": train.lr,
                   "weight_decay": train.weight_decay},
                  {"name": "task_weights", "params": [p for p in weights if id(p) in per_task],
                   "lr": train.task_lr, "weight_decay": train.weight_decay}]
        groups = [g for g in groups if g["params"]]
    arch = model.architecture_parameters()
    if arch:
        groups.append({"name": "architecture", "params": arch, "lr": architecture_lr(model, train),
                       "weight_decay": 0.0})
    owners = {id(u.param): u for u in model.parameter_owners()}
    opt = TaskSlicedOptimizer(groups, train.optimizer, model.scheme.n_tasks, train.lr, set(owners), owners)
    described = [{"name": g["name"], "lr": g["lr"], "n_params": int(sum(p.numel() for p in g["params"]))}
                 for g in groups]
    return opt, described
