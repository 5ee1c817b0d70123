"""Plots for branched networks: the task-affinity heatmap (Fig. 2a) and the tree (Fig. 1b / 3).

Each function takes an optional ``ax`` and returns ``(fig, ax)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_affinity(affinity: Any, tasks: Sequence[str], ax: Any = None, title: str = "") -> tuple[Any, Any]:
    """affinity [N, N] (Spearman, in [-1, 1]) as an annotated heatmap."""
    a = np.asarray(affinity, dtype=float)  # [N, N]
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(tasks), 0.8 + 0.6 * len(tasks)))
    else:
        fig = ax.figure
    im = ax.imshow(a, cmap="viridis", vmin=min(0.0, float(a.min())), vmax=1.0)
    ax.set_xticks(range(len(tasks)), tasks, rotation=45, ha="right")
    ax.set_yticks(range(len(tasks)), tasks)
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            ax.text(j, i, f"{a[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if a[i, j] < 0.6 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    if title:
        ax.set_title(title)
    return fig, ax


def tree_layout(partitions: Sequence[Sequence[Sequence[str]]]) -> tuple[list[str], list[list[float]]]:
    """Leaf order (tasks grouped as the deepest partition nests them) and each group's x position."""
    def key(task: str) -> tuple[int, ...]:
        return tuple(next(g for g, grp in enumerate(p) if task in grp) for p in partitions)

    leaves = sorted((t for grp in partitions[0] for t in grp), key=key)
    x_of = {t: float(i) for i, t in enumerate(leaves)}
    xs = [[float(np.mean([x_of[t] for t in grp])) for grp in p] for p in partitions]
    return leaves, xs


def plot_tree(partitions: Sequence[Sequence[Sequence[str]]], ax: Any = None, title: str = "") -> tuple[Any, Any]:
    """Draw a branched network: one node per group and depth (block copies), leaves = task heads."""
    leaves, xs = tree_layout(partitions)
    depth = len(partitions)
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(leaves), 1.2 + 0.8 * depth))
    else:
        fig = ax.figure
    for d, p in enumerate(partitions):
        for g, grp in enumerate(p):
            x, y = xs[d][g], -d
            if d > 0:
                parent = next(h for h, pg in enumerate(partitions[d - 1]) if grp[0] in pg)
                ax.plot([xs[d - 1][parent], x], [y + 1, y], color="gray", zorder=1)
            ax.scatter([x], [y], s=180, color="tab:blue", zorder=2)
            ax.text(x + 0.12, y + 0.12, f"f{d + 1}", fontsize=7)
    for i, task in enumerate(leaves):
        parent = next(h for h, pg in enumerate(partitions[-1]) if task in pg)
        ax.plot([xs[-1][parent], i], [-(depth - 1), -depth], color="gray", zorder=1)
        ax.text(i, -depth - 0.1, task, ha="center", va="top", rotation=45, fontsize=8)
    ax.set_ylim(-depth - 1.2, 0.6)
    ax.set_xlim(-0.8, len(leaves) - 0.2)
    ax.axis("off")
    if title:
        ax.set_title(title)
    return fig, ax
