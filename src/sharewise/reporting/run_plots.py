"""Plots for a finished run directory (reads summary.json and metrics.jsonl)."""

from __future__ import annotations

import json
from pathlib import Path

from sharewise.reporting import plots
from sharewise.training.io import read_jsonl


def curve(records: list[dict], key: str = "mean_test_error") -> list[tuple[int, float]]:
    return [(r["step"], r[key]) for r in records if r.get(key) is not None]


def plot_run(run_dir: str | Path) -> list[Path]:
    """Write the run's plots under ``run_dir/plots`` and return their paths."""
    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    records = read_jsonl(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").exists() else []
    out = run_dir / "plots"
    out.mkdir(exist_ok=True)
    written = []
    key = "mean_test_error" if summary.get("mean_test_error") is not None else "mean_test_loss"
    fig, _ = plots.plot_error_curves({summary["scheme"]: [curve(records, key)]},
                                     ylabel=key.replace("_", " "))
    plots.save(fig, out / "curves.png")
    written.append(out / "curves.png")
    structure = summary.get("structure", {})
    if "scales" in structure:
        fig, _ = plots.plot_soft_order(structure["scales"], structure["tasks"], structure["candidates"])
        plots.save(fig, out / "soft_order.png")
        fig, _ = plots.plot_layer_usage(structure["scales"], structure["candidates"])
        plots.save(fig, out / "layer_usage.png")
        written += [out / "soft_order.png", out / "layer_usage.png"]
    if "allocation" in structure:
        written += _allocation_plots(structure, records, out)
    return written


MAX_PROBABILITY_PLOTS = 8  # Fig. 8 per task; a 40-task run gets the first 8


def _allocation_plots(structure: dict, records: list[dict], out: Path) -> list[Path]:
    """Gumbel-Matrix (and its fixed baselines): Figs. 5 and 6; Fig. 8 where probabilities were logged."""
    from sharewise.reporting import allocation_plots as ap

    names = structure.get("tasks")
    written = []
    fig, _ = ap.plot_allocation(structure["allocation"], names)
    plots.save(fig, out / "allocation.png")
    written.append(out / "allocation.png")
    if "task_similarity" in structure:
        fig, _ = ap.plot_task_similarity(structure["task_similarity"], names)
        plots.save(fig, out / "task_similarity.png")
        written.append(out / "task_similarity.png")
    _, probs = ap.probability_curves(records)  # [S, T, L, C]
    for t in range(min(probs.shape[1], MAX_PROBABILITY_PLOTS) if probs.size else 0):
        fig, _ = ap.plot_allocation_probabilities(records, t, structure.get("components"),
                                                  names[t] if names else None)
        path = out / f"allocation_probabilities_t{t}.png"
        plots.save(fig, path)
        written.append(path)
    return written
