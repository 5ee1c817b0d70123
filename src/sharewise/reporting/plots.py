"""Plots of what was learned. Each function takes an optional ``ax``/``fig`` and returns (fig, ax).

- ``plot_soft_order``: per task, the learned scales s(t, j, k) as a layer-by-depth image
  (the paper's Fig. 4d).
- ``plot_layer_usage``: for each layer, its mean scale at each depth across tasks (Fig. 6b).
- ``plot_error_curves``: test error by iteration, one line per scheme with a band over seeds
  (Fig. 5b).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_soft_order(scales: Sequence, task_names: Sequence[str], candidates: Sequence[str],
                    fig: Any = None) -> tuple[Any, Any]:
    """scales [T][J][D] -> a grid of T images (rows: candidate layers, columns: depths)."""
    s = np.asarray(scales, dtype=float)  # [T, J, D]
    t = s.shape[0]
    if t > 12:  # a panel per task is unreadable at 100+ tasks: one task x (layer, depth) image
        return _soft_order_heatmap(s, task_names, candidates, fig)
    cols = min(t, 5)
    rows = math.ceil(t / cols)
    if fig is None:
        fig = plt.figure(figsize=(2.2 * cols + 1, 2.0 * rows + 0.6))
    axes = fig.subplots(rows, cols, squeeze=False)
    vmax = max(1.0, float(s.max())) if s.size else 1.0
    image = None
    for i, ax in enumerate(axes.flat):
        if i >= t:
            ax.axis("off")
            continue
        image = ax.imshow(s[i], vmin=0, vmax=vmax, cmap="viridis", aspect="auto")
        ax.set_title(task_names[i], fontsize=9)
        ax.set_yticks(range(len(candidates)), list(candidates), fontsize=7)
        ax.set_xticks(range(s.shape[2]), [str(k + 1) for k in range(s.shape[2])], fontsize=7)
        ax.set_xlabel("depth", fontsize=7)
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="scale s(t, j, k)")
    fig.suptitle("Learned soft order per task")
    return fig, axes


def _soft_order_heatmap(s: np.ndarray, task_names: Sequence[str], candidates: Sequence[str],
                        fig: Any = None) -> tuple[Any, Any]:
    t, j, d = s.shape
    flat = s.transpose(0, 2, 1).reshape(t, d * j)  # [T, D*J]: depth-major columns
    if fig is None:
        fig = plt.figure(figsize=(min(14, 2 + 0.3 * d * j), 1.2 + 0.13 * t))
    ax = fig.subplots()
    image = ax.imshow(flat, vmin=0, vmax=max(1.0, float(s.max())), cmap="viridis", aspect="auto",
                      interpolation="nearest")
    task_ticks(ax, list(task_names), "y", fontsize=6)
    ax.set_xticks(range(d * j), [f"{candidates[k % j] if k % j < len(candidates) else k % j}@{k // j + 1}"
                                 for k in range(d * j)], fontsize=6, rotation=90)
    for k in range(1, d):
        ax.axvline(k * j - 0.5, color="white", lw=0.8)
    ax.set_xlabel("layer @ depth")
    fig.colorbar(image, ax=ax, shrink=0.6, label="scale s(t, j, k)")
    ax.set_title(f"Learned soft order, {t} tasks")
    return fig, ax


def plot_layer_usage(scales: Sequence, candidates: Sequence[str], ax: Any = None) -> tuple[Any, Any]:
    """Mean scale of each layer at each depth, averaged over tasks; +- one std as a band."""
    s = np.asarray(scales, dtype=float)  # [T, J, D]
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5, 3.5))
    depths = np.arange(1, s.shape[2] + 1)
    for j, name in enumerate(candidates):
        mean, std = s[:, j].mean(0), s[:, j].std(0)
        ax.plot(depths, mean, marker="o", label=name)
        ax.fill_between(depths, mean - std, mean + std, alpha=0.15)
    ax.set_xlabel("depth")
    ax.set_ylabel("mean scale over tasks")
    ax.set_xticks(depths)
    ax.set_title("Layer usage by depth")
    ax.legend(fontsize=8)
    return fig, ax


def plot_error_curves(curves: Mapping[str, Sequence[Sequence[tuple[int, float]]]], ax: Any = None,
                      ylabel: str = "mean test error", title: str = "Test error by iteration") -> tuple[Any, Any]:
    """curves: scheme -> list over seeds of [(step, value), ...]; mean line and min-max band."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 4))
    for scheme, runs in curves.items():
        runs = [r for r in runs if r]
        if not runs:
            continue
        n = min(len(r) for r in runs)
        steps = np.array([p[0] for p in runs[0][:n]])
        vals = np.array([[p[1] for p in r[:n]] for r in runs], dtype=float)  # [seeds, n]
        ax.plot(steps, vals.mean(0), label=f"{scheme} (n={len(runs)})")
        if len(runs) > 1:
            ax.fill_between(steps, vals.min(0), vals.max(0), alpha=0.15)
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:  # no curve at all (e.g. no run has logged yet): no empty legend
        ax.legend(fontsize=8)
    return fig, ax


MAX_TICK_LABELS = 50  # beyond this many tasks, label every k-th one so the labels never overlap


def task_ticks(ax: Any, names: Sequence[str], axis: str = "y", fontsize: float = 7, rotation: float = 0) -> None:
    """Label ``names`` along ``axis``; with more than :data:`MAX_TICK_LABELS`, every k-th one."""
    step = max(1, math.ceil(len(names) / MAX_TICK_LABELS))
    pos = list(range(0, len(names), step))
    labels = [names[i] for i in pos]
    size = fontsize if step == 1 else min(fontsize, 6)
    if axis == "y":
        ax.set_yticks(pos, labels, fontsize=size)
    else:
        ax.set_xticks(pos, labels, fontsize=size, rotation=rotation)
    if step > 1:
        (ax.set_ylabel if axis == "y" else ax.set_xlabel)(f"task (1 in {step} of {len(names)} labelled)",
                                                          fontsize=7)


def save(fig: Any, path: Any, dpi: int = 110) -> None:
    """Write ``fig`` atomically (temp file, then rename: a killed process leaves no half image)."""
    from sharewise.training.io import atomic_write

    path = Path(path)
    atomic_write(path, lambda fh: fig.savefig(fh, format=path.suffix.lstrip(".") or "png", dpi=dpi,
                                              bbox_inches="tight"))
    plt.close(fig)
