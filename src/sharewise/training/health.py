"""Warnings about how training went, read off a finished run's evaluation history.

A network without normalisation can settle, within its first hundred steps, on a constant
prediction: every ReLU of the core switched off, so no gradient reaches it again, and the run
spends the rest of its budget at chance without an error anywhere. That is what soft ordering did on
Omniglot-50 at a batch of one image per task (docs/results.md §1.5: the loss stayed at
sum ln(classes) for all 5000 steps). A user sees only a poor number; this module names the cause.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

CHANCE_TOLERANCE = 0.02  # relative distance of a task's loss from ln(classes) that still counts as chance


def chance_level_tasks(tasks: Sequence[Any], history: Sequence[Mapping[str, Any]]) -> list[str]:
    """Multiclass tasks whose held-out loss stayed at the chance level ``ln(classes)`` (within
    :data:`CHANCE_TOLERANCE`) at every evaluation of the second half of training.

    The validation split is read where the records have it, else the test split. Fewer than two
    evaluations in the second half: nothing is judged (an empty list)."""
    late = list(history[len(history) // 2:])
    if len(late) < 2:
        return []
    stuck = []
    for task in tasks:
        if task.kind != "multiclass" or task.n_outputs < 2:
            continue
        chance = math.log(task.n_outputs)
        losses = [_held_out_loss(record, task.name) for record in late]
        if all(loss is not None and abs(loss - chance) <= CHANCE_TOLERANCE * chance for loss in losses):
            stuck.append(task.name)
    return stuck


def _held_out_loss(record: Mapping[str, Any], name: str) -> float | None:
    for split in ("val", "test"):
        entry = (record.get(split) or {}).get(name)
        if entry is not None and entry.get("loss") is not None:
            return float(entry["loss"])
    return None


def training_warnings(tasks: Sequence[Any], history: Sequence[Mapping[str, Any]]) -> list[str]:
    """The warnings for ``summary.json`` and the run log (empty when training looks healthy)."""
    stuck = chance_level_tasks(tasks, history)
    if not stuck:
        return []
    shown = ", ".join(stuck[:5]) + (f" and {len(stuck) - 5} more" if len(stuck) > 5 else "")
    return [f"{len(stuck)} of {len(tasks)} tasks stayed at chance over the second half of training ({shown}): "
            f"their held-out loss was ln(number of classes) at every evaluation, i.e. a constant prediction. "
            f"The usual cause is a dead core (every ReLU switched off early, so no gradient reaches it); "
            f"trace the first steps with benchmarks/start_diagnostics.py CONFIG --setups SCHEME --train-steps 300. "
            f"Remedies that worked here: a larger input scale (Omniglot: tasks.options.pixel_max=255) or a "
            f"larger batch (docs/results.md §1.5)"]
