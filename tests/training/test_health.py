"""A run stuck at chance is named in the summary's warnings; a run that learns is not."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

from sharewise.training.health import chance_level_tasks, training_warnings


def _task(name: str, classes: int, kind: str = "multiclass") -> Any:
    return SimpleNamespace(name=name, kind=kind, n_outputs=classes)


def _history(losses: dict[str, list[float]], split: str = "val") -> list[dict[str, Any]]:
    n = len(next(iter(losses.values())))
    return [{"step": 100 * (i + 1), split: {name: {"loss": values[i], "error": 0.5} for name, values in losses.items()}}
            for i in range(n)]


def test_tasks_at_ln_classes_through_the_second_half_are_named() -> None:
    tasks = [_task("stuck", 30), _task("learns", 20), _task("late", 10), _task("reg", 1, "regression")]
    chance = {t.name: math.log(t.n_outputs) for t in tasks}
    history = _history({
        "stuck": [chance["stuck"] * f for f in (1.0, 1.005, 0.995, 1.01, 0.99, 1.0)],
        "learns": [chance["learns"], chance["learns"], 2.0, 1.5, 1.2, 1.0],
        "late": [chance["late"]] * 5 + [0.9 * chance["late"]],  # left chance at the last evaluation
        "reg": [0.0] * 6,
    })
    assert chance_level_tasks(tasks, history) == ["stuck"]
    (message,) = training_warnings(tasks, history)
    assert message.startswith("1 of 4 tasks stayed at chance over the second half of training (stuck)")
    assert "start_diagnostics.py" in message and "pixel_max=255" in message


def test_the_test_split_stands_in_without_validation_and_short_runs_are_not_judged() -> None:
    tasks = [_task("a", 5)]
    stuck = _history({"a": [math.log(5)] * 4}, split="test")
    assert chance_level_tasks(tasks, stuck) == ["a"]
    assert chance_level_tasks(tasks, stuck[:2]) == []  # one evaluation in the second half: no verdict
    assert training_warnings(tasks, _history({"a": [1.0] * 4})) == []


def test_many_stuck_tasks_are_counted_not_all_listed() -> None:
    tasks = [_task(f"t{i}", 4) for i in range(8)]
    history = _history({t.name: [math.log(4)] * 4 for t in tasks})
    (message,) = training_warnings(tasks, history)
    assert message.startswith("8 of 8 tasks") and "t0, t1, t2, t3, t4 and 3 more" in message
