"""Plots of a learned Gumbel-Matrix allocation (Maziarz et al., Figs. 5, 6 and 8).

Each plot function takes an optional ``ax``/``fig`` and returns ``(fig, ax)``; the pure helpers
(:func:`allocation_image`, :func:`probability_curves`) turn a run's ``summary.json`` structure and
``metrics.jsonl`` records into arrays, so they are testable without drawing.

- ``plot_allocation``: the binary task-by-component allocation image (Fig. 5).
- ``plot_task_similarity``: the pairwise cosine similarity of the task embeddings (Fig. 6).
- ``plot_allocation_probabilities``: one task's connection probabilities over training, one panel
  per modular layer, one line per component (Fig. 8). Needs the ``prob/t{t}/l{l}/c{c}`` scheme
  metrics that ``GumbelMatrix.step_metrics`` logs at every evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sharewise.sharing._keys import parse_probability_key  # noqa: E402

from sharewise.reporting import plots  # noqa: E402



def allocation_image(allocation: Mapping[str, Sequence[Sequence[int]]]) -> tuple[np.ndarray, list[int]]:
    """``{"0": [[0/1 per component] per layer], ...}`` -> ``([T, sum_l C_l] array, layer widths)``.

    Rows follow the task index (the keys are task indices as strings, as in ``summary.json``).
    """
    if not allocation:
        raise ValueError("expected a non-empty allocation {task index: [[0/1 per component] per layer]}, but got {}")
    keys = sorted(allocation, key=int)
    widths = [len(layer) for layer in allocation[keys[0]]]
    rows = []
    for k in keys:
        layers = allocation[k]
        if [len(layer) for layer in layers] != widths:
            raise ValueError(f"every task needs the same layer widths {widths}, but task {k} has "
                             f"{[len(layer) for layer in layers]}")
        rows.append([v for layer in layers for v in layer])
    return np.asarray(rows, dtype=float), widths  # [T, sum_l C_l]


def probability_curves(records: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """metrics.jsonl records -> ``(steps [S], probabilities [S, T, L, C_max])``; NaN where a layer
    has fewer than ``C_max`` components. Records without the probability metrics are skipped."""
    steps, frames = [], []
    for r in records:
        found = {k: float(v) for key, v in (r.get("scheme") or {}).items()
                 if (k := parse_probability_key(key)) is not None}
        if found:
            steps.append(int(r["step"]))
            frames.append(found)
    if not frames:
        return np.zeros(0), np.zeros((0, 0, 0, 0))
    t, l, c = (max(k[i] for f in frames for k in f) + 1 for i in range(3))
    out = np.full((len(frames), t, l, c), np.nan)  # [S, T, L, C]
    for s, frame in enumerate(frames):
        for (ti, li, ci), v in frame.items():
            out[s, ti, li, ci] = v
    return np.asarray(steps), out


def plot_allocation(allocation: Mapping[str, Sequence[Sequence[float]]], task_names: Sequence[str] | None = None,
                    ax: Any = None, title: str | None = None) -> tuple[Any, Any]:
    """Fig. 5: rows are tasks, columns the components of all layers (yellow = allocated);
    white lines separate the layers. Connection probabilities in [0, 1] draw the same way
    (pass a ``title`` that says so)."""
    image, widths = allocation_image(allocation)
    t, total = image.shape
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(
        figsize=(min(2 + 0.22 * total, 14), min(1.2 + 0.22 * t, 12)))
    ax.imshow(image, vmin=0, vmax=1, cmap="viridis", aspect="auto", interpolation="nearest")
    for edge in np.cumsum(widths)[:-1]:
        ax.axvline(edge - 0.5, color="white", linewidth=1.5)
    names = list(task_names) if task_names is not None else [str(i) for i in range(t)]
    plots.task_ticks(ax, names, "y", fontsize=7 if t > 12 else 9)
    centres = np.cumsum(widths) - np.asarray(widths) / 2 - 0.5
    ax.set_xticks(centres, [f"layer {i}" for i in range(len(widths))], fontsize=8)
    ax.set_title(title if title is not None else f"Allocation (active {image.mean():.0%})")
    return fig, ax


def plot_task_similarity(similarity: Sequence[Sequence[float]], task_names: Sequence[str] | None = None,
                         ax: Any = None, title: str = "Task embedding similarity",
                         vmin: float = 0.0) -> tuple[Any, Any]:
    """Fig. 6: the [T, T] cosine similarity of the binary task embeddings (``vmin=-1`` for a
    centred cosine, which is negative between tasks below and above the mean)."""
    sim = np.asarray(similarity, dtype=float)  # [T, T]
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"expected a square [T, T] similarity matrix, but got shape {list(sim.shape)}")
    t = sim.shape[0]
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(min(2 + 0.25 * t, 12),) * 2)
    image = ax.imshow(sim, vmin=vmin, vmax=1, cmap="viridis", interpolation="nearest")
    names = list(task_names) if task_names is not None else [str(i) for i in range(t)]
    size = 6 if t > 12 else 9
    plots.task_ticks(ax, names, "y", fontsize=size)
    plots.task_ticks(ax, names, "x", fontsize=size, rotation=90)
    fig.colorbar(image, ax=ax, shrink=0.8, label="cosine similarity")
    ax.set_title(title)
    return fig, ax


def plot_allocation_probabilities(records: Sequence[Mapping[str, Any]], task: int,
                                  components: Sequence[Sequence[str]] | None = None, task_name: str | None = None,
                                  fig: Any = None) -> tuple[Any, Any]:
    """Fig. 8: task ``task``'s connection probabilities p over training, a panel per layer."""
    steps, probs = probability_curves(records)  # [S], [S, T, L, C]
    if probs.size == 0:
        raise ValueError("no 'prob/t*/l*/c*' scheme metrics in the records: was this a gumbel_matrix run?")
    if not 0 <= task < probs.shape[1]:
        raise ValueError(f"task must be in [0, {probs.shape[1]}), but got {task}")
    n_layers = probs.shape[2]
    cols = min(n_layers, 4)
    rows = math.ceil(n_layers / cols)
    if fig is None:
        fig = plt.figure(figsize=(3.2 * cols + 0.5, 2.4 * rows + 0.6))
    axes = fig.subplots(rows, cols, squeeze=False)
    for l, ax in enumerate(axes.flat):
        if l >= n_layers:
            ax.axis("off")
            continue
        for c in range(probs.shape[3]):
            series = probs[:, task, l, c]
            if np.isnan(series).all():
                continue
            label = components[l][c] if components is not None else f"c{c}"
            ax.plot(steps, series, label=label)
        ax.set_ylim(-0.03, 1.03)
        ax.set_title(f"layer {l}", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.legend(fontsize=6)
    fig.suptitle(f"Connection probabilities over training: {task_name or f'task {task}'}", y=1.02)
    return fig, axes
