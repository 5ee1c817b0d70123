"""Multi-task performance Delta_m relative to a baseline (single-task models).

Branched multi-task networks, Eq. 1 (after Maninis et al., 2019):
``Delta_m = (1/T) sum_i (-1)^{l_i} (M_m,i - M_b,i) / M_b,i`` with ``l_i = 1`` when a lower value
of task ``i``'s metric is better. Positive means the model beats the baseline on average.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping

from sharewise.errors import ConfigError


def _check(
    model_metrics: Mapping[Hashable, float],
    baseline_metrics: Mapping[Hashable, float],
    lower_is_better: Mapping[Hashable, bool],
) -> None:
    tasks = set(model_metrics)
    others = (("baseline_metrics", baseline_metrics), ("lower_is_better", lower_is_better))
    for name, other in others:
        if set(other) != tasks:
            missing = sorted(map(str, tasks - set(other)))
            extra = sorted(map(str, set(other) - tasks))
            raise ConfigError(
                f"{name} must have the same tasks as model_metrics, but tasks {missing} are "
                f"missing from it and tasks {extra} are only in it; give every task's metric "
                f"and direction exactly once."
            )
    if not tasks:
        raise ConfigError("model_metrics is empty; give at least one task's metric.")
    for task in model_metrics:
        base, value = baseline_metrics[task], model_metrics[task]
        if not (math.isfinite(base) and math.isfinite(value)):
            raise ConfigError(
                f"task {task!r} has a non-finite metric (model {value}, baseline {base}); "
                f"Delta_m needs finite numbers."
            )
        if base == 0:
            raise ConfigError(
                f"task {task!r} has baseline metric 0, so the relative change is undefined; "
                f"use a baseline with a non-zero metric for this task."
            )
        if not isinstance(lower_is_better[task], bool):
            raise ConfigError(
                f"lower_is_better[{task!r}] must be True or False, but got "
                f"{lower_is_better[task]!r}."
            )


def delta_m_per_task(
    model_metrics: Mapping[Hashable, float],
    baseline_metrics: Mapping[Hashable, float],
    lower_is_better: Mapping[Hashable, bool],
) -> dict[Hashable, float]:
    """Each task's term of Eq. 1, ``(-1)^{l_i} (M_m,i - M_b,i) / M_b,i``, as a fraction.

    Returned in ``model_metrics``' task order; multiply by 100 for percent.
    """
    _check(model_metrics, baseline_metrics, lower_is_better)
    return {
        task: (-1.0 if lower_is_better[task] else 1.0)
        * (model_metrics[task] - baseline_metrics[task])
        / baseline_metrics[task]
        for task in model_metrics
    }


def delta_m(
    model_metrics: Mapping[Hashable, float],
    baseline_metrics: Mapping[Hashable, float],
    lower_is_better: Mapping[Hashable, bool],
) -> float:
    """Delta_m of Eq. 1 as a *fraction* (the paper reports percent: ``-0.0281`` is -2.81 %).

    Args:
        model_metrics: task -> metric of the multi-task model.
        baseline_metrics: task -> metric of the baseline (same tasks).
        lower_is_better: task -> True when a lower metric is better (errors, losses).
    """
    terms = delta_m_per_task(model_metrics, baseline_metrics, lower_is_better)
    return float(sum(terms.values()) / len(terms))
