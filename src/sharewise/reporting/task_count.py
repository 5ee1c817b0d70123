"""Error against the number of tasks k (the soft-ordering paper's Fig. 6a) from finished runs.

The paper trains every scheme on the first k Omniglot alphabets for several k and plots the mean
test error over those k tasks against k: whether sharing gains as tasks are added, and whether a
scheme is "robust to the number of tasks". Here any set of run directories works: each run's k
is the number of tasks in its ``summary.json``, runs are grouped by (scheme, k), and a group's
value is the mean over seeds with its 95 % t-interval (``describe`` of ``sharewise compare``).
Runs continued by ``sharewise extend`` are a different schedule and are left out (with a note),
so a k's row never mixes step counts; two runs of one (scheme, k, seed) are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sharewise.errors import DataError
from sharewise.reporting.compare import describe
from sharewise.reporting.headline import Run, metric_value


def task_count_table(runs: Sequence[Run]) -> tuple[dict[str, dict[int, dict[str, Any]]], list[str]]:
    """``{scheme: {k: describe(test error %) + "seeds", "steps"}}`` and notes on the runs left out."""
    notes: list[str] = []
    groups: dict[str, dict[int, dict[int, Run]]] = {}
    for run in runs:
        if run.summary.get("extended_from"):
            notes.append(f"{run.path}: left out (continued to {run.summary['steps']} steps by sharewise extend)")
            continue
        k = len(run.summary["tasks"])
        seeds = groups.setdefault(run.label, {}).setdefault(k, {})
        if run.seed in seeds:
            raise DataError(f"{seeds[run.seed].path} and {run.path} are both {run.label!r} with k = {k} tasks, "
                            f"seed {run.seed}; point the curve at folders that hold each run once")
        seeds[run.seed] = run
    table: dict[str, dict[int, dict[str, Any]]] = {}
    for label, by_k in sorted(groups.items()):
        for k, seeds in sorted(by_k.items()):
            ordered = [seeds[s] for s in sorted(seeds)]
            steps = sorted({int(r.summary["steps"]) for r in ordered})
            if len(steps) > 1:
                raise DataError(f"{label!r} with k = {k} has runs of {steps} steps; one k's seeds must share "
                                f"a schedule")
            table.setdefault(label, {})[k] = {**describe([metric_value(r.summary) for r in ordered]),
                                              "seeds": sorted(seeds), "steps": steps[0]}
    return table, notes


def task_count_markdown(table: dict[str, dict[int, dict[str, Any]]]) -> str:
    """One row per k, one column per scheme: mean test error % ± 95 % interval (n seeds)."""
    schemes = sorted(table)
    ks = sorted({k for by_k in table.values() for k in by_k})
    lines = ["| k | " + " | ".join(schemes) + " |", "|---|" + "---|" * len(schemes)]
    for k in ks:
        cells = []
        for s in schemes:
            d = table[s].get(k)
            if d is None:
                cells.append("-")
                continue
            ci = f" ± {d['ci95']:.1f}" if d["ci95"] is not None else ""
            cells.append(f"{d['mean']:.1f}{ci} (n={d['n']})")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_task_count_curve(table: dict[str, dict[int, dict[str, Any]]], ax: Any = None) -> tuple[Any, Any]:
    """Fig. 6a: mean test error against k per scheme, with the 95 % interval as error bars."""
    import matplotlib.pyplot as plt

    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 4))
    for scheme, by_k in sorted(table.items()):
        ks = sorted(by_k)
        ax.errorbar(ks, [by_k[k]["mean"] for k in ks], yerr=[by_k[k]["ci95"] or 0.0 for k in ks],
                    marker="o", capsize=3, label=scheme)
    ax.set_xlabel("number of tasks k")
    ax.set_ylabel("mean test error %")
    ax.set_title("Error vs number of tasks")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return fig, ax
