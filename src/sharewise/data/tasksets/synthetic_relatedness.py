"""Synthetic regression tasks with controlled relatedness (Gumbel-Matrix paper, App. A1).

Following Ma et al. (MMoE): orthonormal u_1, u_2, ...; task weights w = c * u for the first task
of a group and w = c * (rho * u_g + sqrt(1 - rho^2) * v_t) for the others (v_t orthonormal to
everything else), so cos(w_a, w_b) = rho within a group and 0 across groups; labels

    y = w^T x + sum_{i=1..m} sin(alpha_i w^T x + beta_i) + eps,   x ~ N(0, I_d), eps ~ N(0, noise^2)

with d = 128, c = 1, m = 6 (the paper; its code defaults to 10), alpha_i = i, beta_i = (i-1)^2,
noise std 0.01. ``groups=[2]`` with ``rho`` is Sec. II's two-task experiment (rho in {0, 1});
``groups=[2, 2]`` with ``rho=1`` is App. A3's two pairs (related within, unrelated across).
Every task draws its own inputs. The generator seed is ``data_seed`` (default: the run seed).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from sharewise.data.tasksets._registry import register_taskset
from sharewise.errors import ConfigError
from sharewise.tasks.spec import TaskData


def relatedness_weights(groups: Sequence[int], rho: float, dim: int, scale: float,
                        rng: np.random.Generator) -> np.ndarray:
    """[T, d] task weight vectors; cosine rho within a group, 0 across groups."""
    n_tasks = int(sum(groups))
    n_vectors = len(groups) + n_tasks
    if n_vectors > dim:
        raise ConfigError(f"{n_tasks} tasks in {len(groups)} groups need {n_vectors} orthogonal vectors, more than dim={dim}")
    q, _ = np.linalg.qr(rng.standard_normal((dim, n_vectors)))  # orthonormal columns
    weights = []
    for g, size in enumerate(groups):
        base = q[:, g]
        for i in range(size):
            own = q[:, len(groups) + len(weights)]
            w = base if i == 0 else rho * base + np.sqrt(max(0.0, 1 - rho ** 2)) * own
            weights.append(scale * w)
    return np.stack(weights)


def labels(x: np.ndarray, w: np.ndarray, n_sines: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    proj = x @ w  # [N]
    alpha = np.arange(1, n_sines + 1)
    beta = (alpha - 1.0) ** 2
    y = proj + np.sin(np.outer(proj, alpha) + beta).sum(1)
    return (y + noise * rng.standard_normal(len(proj))).astype(np.float32)


@register_taskset("synthetic_relatedness")
def build_synthetic_relatedness(*, data_dir: str | None = None, seed: int = 0, groups: Sequence[int] = (2,),
                                rho: float = 1.0, dim: int = 128, scale: float = 1.0, n_sines: int = 6,
                                noise: float = 0.01, n_train: int = 10000, n_val: int = 1000, n_test: int = 2000,
                                data_seed: int | None = None) -> list[TaskData]:
    if not 0.0 <= rho <= 1.0:
        raise ConfigError(f"tasks.options.rho: relatedness must lie in [0, 1], got {rho}")
    rng = np.random.default_rng(seed if data_seed is None else data_seed)
    weights = relatedness_weights(groups, rho, dim, scale, rng)
    tasks = []
    n = n_train + n_val + n_test
    group_of = [g for g, size in enumerate(groups) for _ in range(size)]
    for t, w in enumerate(weights):
        x = rng.standard_normal((n, dim)).astype(np.float32)
        y = labels(x, w, n_sines, noise, rng)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y).unsqueeze(1)
        a, b = n_train, n_train + n_val
        tasks.append(TaskData(f"g{group_of[t]}t{t}", "regression", 1, xt[:a], yt[:a], xt[a:b], yt[a:b], xt[b:], yt[b:],
                              notes={"group": group_of[t], "rho": rho, "weight": w.tolist()}))
    return tasks
