"""Which method finds the task families? Similarities from finished runs, clustered and scored.

Reads the run directories of a comparison (``out/<scheme>/seed<N>``, as ``sharewise compare``
writes them) and turns each method's run into a task-by-task similarity
(``sharewise.analysis.families``):

========== ================ ==================================================================
method     run of scheme    similarity
========== ================ ==================================================================
rsa        single_task      RSA affinity of the task columns on a shared probe set, mean over depths
gumbel     gumbel_matrix    centred cosine of the connection probabilities (summary.json)
soft_order soft_ordering    centred cosine of the scales (summary.json)
gradients  parallel         cosine of per-task loss gradients on the shared core
========== ================ ==================================================================

The probe set for RSA takes the first validation inputs of every task in turn, so tasks with
their own inputs (Omniglot alphabets, leave-one-class-out MNIST) are compared on one set that
covers every family. Compute per method: the run's training wall time plus this analysis.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sharewise.analysis.families import (centred_cosine, cosine, family_ari, probability_vectors, rsa_similarity,
                                         scale_vectors)
from sharewise.errors import ConfigError
from sharewise.tasks.spec import TaskData

METHOD_SCHEME = {"rsa": "single_task", "gumbel": "gumbel_matrix", "soft_order": "soft_ordering",
                 "gradients": "parallel"}
METHOD_TITLE = {"rsa": "RSA affinity (branched)", "gumbel": "Gumbel-Matrix allocations",
                "soft_order": "soft-order scales", "gradients": "gradient cosine (baseline)"}


def task_families(tasks: Sequence[TaskData]) -> list[Any]:
    """The planted family of every task (``notes['family']``, or ``notes['group']``)."""
    fams = [t.notes.get("family", t.notes.get("group")) for t in tasks]
    if any(f is None for f in fams):
        raise ConfigError("these tasks have no planted families (notes 'family' or 'group'); use a task set that "
                          "plants them (synthetic_relatedness, latent_clusters)")
    return fams


def probe_inputs(tasks: Sequence[TaskData], k: int) -> torch.Tensor:
    """``[K', *in]``: the first ceil(k / T) validation inputs of every task, concatenated."""
    per = max(1, math.ceil(k / len(tasks)))
    xs = [t.split("val" if t.x_val.shape[0] else "test")[0][:per] for t in tasks]
    shapes = {tuple(x.shape[1:]) for x in xs}
    if len(shapes) != 1:
        raise ConfigError(f"RSA compares tasks on one probe set, but the tasks' inputs have shapes {sorted(shapes)}")
    return torch.cat(xs)


def rsa_matrix(model: Any, tasks: Sequence[TaskData], k: int = 240) -> np.ndarray:
    from sharewise.analysis.rsa import rdm_stack, task_affinity
    from sharewise.pipelines.affinity import column_features

    x = probe_inputs(tasks, k)
    with torch.no_grad():
        rdms = {t.name: rdm_stack(column_features(model, x, i)) for i, t in enumerate(tasks)}  # [D, K, K]
    return rsa_similarity(task_affinity(rdms))


def gradient_matrix(model: Any, tasks: Sequence[TaskData], batches: int = 4, batch_size: int = 128,
                    seed: int = 0) -> np.ndarray:
    """Cosine of the tasks' loss gradients on the shared core (summed over a few train batches)."""
    from sharewise.data.sampler import stack_inputs, target_rows
    from sharewise.tasks.losses import MultiTaskLoss

    loss_fn = MultiTaskLoss(tasks)
    shared = [p for p in model.scheme.parameters() if p.requires_grad]
    gen = torch.Generator().manual_seed(seed)
    width = max(t.target_dim for t in tasks)
    grads = torch.zeros(len(tasks), sum(p.numel() for p in shared))
    model.eval()  # no dropout: the gradient of the model as evaluated
    for _ in range(batches):
        rows = [torch.randint(0, t.x_train.shape[0], (batch_size,), generator=gen) for t in tasks]
        xs, _ = stack_inputs([t.x_train[r] for t, r in zip(tasks, rows)])
        ys = torch.stack([target_rows(t, t.y_train[r], width) for t, r in zip(tasks, rows)])
        losses, _ = loss_fn(model(torch.stack(xs)), ys, None)  # [T]
        for i in range(len(tasks)):
            g = torch.autograd.grad(losses[i], shared, retain_graph=i < len(tasks) - 1, allow_unused=True)
            grads[i] += torch.cat([(gi if gi is not None else torch.zeros_like(p)).flatten()
                                   for gi, p in zip(g, shared)])
    return cosine(grads.numpy())


def method_similarity(method: str, run_dir: Path, data_dir: str | None) -> tuple[np.ndarray, list[str], list[Any], float]:
    """(similarity [T, T], task names, planted families, analysis seconds) of one method's run."""
    from sharewise.export import load_run

    started = time.perf_counter()
    summary = json.loads((run_dir / "summary.json").read_text())
    names = list(summary["tasks"])
    structure = summary.get("structure") or {}
    if method == "soft_order":
        sim = centred_cosine(scale_vectors(structure["scales"]))
        tasks = None
    elif method == "gumbel":
        sim = centred_cosine(probability_vectors(structure["probabilities"], len(names)))
        tasks = None
    else:
        _, tasks, model = load_run(run_dir, data_dir)
        sim = rsa_matrix(model, tasks) if method == "rsa" else gradient_matrix(model, tasks)
    seconds = time.perf_counter() - started
    if tasks is None:
        from sharewise.config import parse_config, read_yaml
        from sharewise.data.tasksets import build_tasks

        cfg = parse_config(read_yaml(run_dir / "config.yaml"))
        tasks = build_tasks(cfg.tasks.builder, data_dir=data_dir, seed=cfg.seed, options=cfg.tasks.options)
    return sim, names, task_families(tasks), seconds


def discover(out: str | Path, seeds: Sequence[int], data_dir: str | None = None,
             methods: Sequence[str] = tuple(METHOD_SCHEME)) -> dict[str, Any]:
    """ARI of every method's recovered families per seed, with the compute each needed; the
    similarity matrices of the first seed (for the figure)."""
    out = Path(out)
    result: dict[str, Any] = {"methods": {}, "matrices": {}}
    for method in methods:
        rows = []
        for seed in seeds:
            run_dir = out / METHOD_SCHEME[method] / f"seed{seed}"
            if not (run_dir / "summary.json").is_file():
                raise ConfigError(f"no finished {METHOD_SCHEME[method]} run at {str(run_dir)!r} for method {method!r}")
            sim, names, fams, seconds = method_similarity(method, run_dir, data_dir)
            train_s = json.loads((run_dir / "summary.json").read_text())["wall_time_s"]
            rows.append({"seed": seed, "ari": family_ari(sim, fams), "train_s": train_s, "analysis_s": seconds})
            if seed == seeds[0]:
                result["matrices"][method] = sim.tolist()
                result["tasks"], result["families"] = names, [str(f) for f in fams]
        aris = [r["ari"] for r in rows]
        result["methods"][method] = {"scheme": METHOD_SCHEME[method], "runs": rows, "ari_mean": float(np.mean(aris)),
                                     "ari_ci95": ci95(aris),
                                     "compute_s": float(np.mean([r["train_s"] + r["analysis_s"] for r in rows]))}
    return result


def ci95(values: Sequence[float]) -> float:
    """Half-width of a 95 % t-interval of the mean (nan for one value)."""
    from scipy import stats

    n = len(values)
    if n < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, n - 1) * np.std(values, ddof=1) / math.sqrt(n))


def markdown(result: dict[str, Any]) -> str:
    lines = ["| method (scheme run) | ARI vs planted families, mean ± 95 % CI | per seed | compute per seed (s) |",
             "|---|---|---|---|"]
    for method, r in result["methods"].items():
        per = ", ".join(f"{x['ari']:.2f}" for x in r["runs"])
        lines.append(f"| {METHOD_TITLE[method]} ({r['scheme']}) | {r['ari_mean']:.2f} ± {r['ari_ci95']:.2f} | {per} | "
                     f"{r['compute_s']:.1f} |")
    return "\n".join(lines)


def plot_matrices(result: dict[str, Any]) -> Any:
    """The methods' similarity matrices side by side (tasks ordered by planted family)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(result["matrices"])
    fams = result["families"]
    order = sorted(range(len(fams)), key=lambda i: (fams[i], i))
    names = [result["tasks"][i] for i in order]
    fig, axes = plt.subplots(1, len(methods), figsize=(4.2 * len(methods), 4.4), squeeze=False)
    for ax, method in zip(axes[0], methods):
        sim = np.asarray(result["matrices"][method])[np.ix_(order, order)]
        image = ax.imshow(sim, vmin=-1 if sim.min() < 0 else 0, vmax=1, cmap="viridis", interpolation="nearest")
        ax.set_title(f"{METHOD_TITLE[method]}\nARI {result['methods'][method]['ari_mean']:.2f}", fontsize=9)
        size = 5 if len(names) > 12 else 7
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=size)
        ax.set_yticks(range(len(names)), names, fontsize=size)
        fig.colorbar(image, ax=ax, shrink=0.7)
    fig.tight_layout()
    return fig, axes
