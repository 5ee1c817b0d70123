"""Flat metric keys a scheme logs per connection, defined once for the writer and the readers.

``GumbelMatrix.step_metrics`` writes every connection probability as ``prob/t{t}/l{l}/c{c}``
(flat, so scalar loggers such as TensorBoard take them); the allocation plots parse them back.
Torch-free, so reading a run's metrics needs no model code.
"""

from __future__ import annotations

import re

PROBABILITY_PREFIX = "prob"
_PROBABILITY_KEY = re.compile(rf"^{PROBABILITY_PREFIX}/t(\d+)/l(\d+)/c(\d+)$")


def probability_key(task: int, layer: int, component: int) -> str:
    """The metric key of task ``task``'s connection probability to a component of a layer."""
    return f"{PROBABILITY_PREFIX}/t{task}/l{layer}/c{component}"


def parse_probability_key(key: str) -> tuple[int, int, int] | None:
    """``(task, layer, component)`` of a :func:`probability_key`, or None for any other key."""
    m = _PROBABILITY_KEY.match(key)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None
