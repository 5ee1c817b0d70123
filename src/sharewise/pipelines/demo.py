"""``sharewise demo``: the library's point on a generated task set with planted families.

Nine regression tasks in three families (``synthetic_relatedness``, Gumbel-Matrix paper App. A1:
weights related with rho = 0.95 within a family, orthogonal across; shared input space, one
shared output layer, so tasks must differ in how they route through the shared core). Then:

1. the schemes are compared over seeds with intervals (single-task, parallel, soft ordering,
   Gumbel-Matrix, and the branched network RSA builds);
2. each method's learned structure is turned into a task similarity and clustered into three
   families, scored by the adjusted Rand index against the planted ones: Gumbel-Matrix
   allocations, soft-order scales, RSA affinity of the single-task networks and the RSA tree
   (its last depth's groups), beside a gradient-cosine baseline;
3. everything lands in one report (comparison, similarity matrices, tree, per-run structure).

Training is small (300 steps, 2000 samples per task) so the whole demo fits in two minutes on
two cores; no download (the tasks are generated).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

SCHEMES = ["single_task", "parallel", "soft_ordering", "gumbel_matrix"]


def demo_config(steps: int) -> dict[str, Any]:
    """Kept equal to configs/demo/demo.yaml (a test checks it); the package does not ship configs/."""
    return {
        "name": "demo",
        "scheme": "soft_ordering",
        "tasks": {"builder": "synthetic_relatedness",
                  "options": {"groups": [3, 3, 3], "rho": 0.95, "dim": 32, "n_train": 2000, "n_val": 300,
                              "n_test": 600, "data_seed": 0}},
        "model": {"encoder": {"kind": "identity"}, "head": {"shared": True},
                  "core": {"kind": "dense", "width": 32, "depth": 3, "dropout": 0.0, "activation": "relu"}},
        "train": {"steps": steps, "batch_size": 32, "lr": 0.003, "eval_every": max(1, steps // 3), "threads": 1},
    }


def rsa_tree(run_dir: Path, n_families: int, out: Path) -> dict[str, Any]:
    """The branched tree RSA finds from a single-task run: least dissimilarity within a budget of
    one shared first block and ``n_families`` copies of every later block (``tree.json``)."""
    from sharewise.analysis import beam_search, tree_to_dict
    from sharewise.analysis.rsa import rdm_stack, task_affinity
    from sharewise.export import load_run
    from sharewise.pipelines.affinity import column_features, parameter_counts, shared_parameter_count
    from sharewise.pipelines.families import probe_inputs
    from sharewise.training.io import write_json

    import torch

    _, tasks, model = load_run(run_dir)
    names = [t.name for t in tasks]
    x = probe_inputs(tasks, 240)
    with torch.no_grad():
        affinity = task_affinity({t.name: rdm_stack(column_features(model, x, i)) for i, t in enumerate(tasks)})
    blocks, heads = parameter_counts(model, names)
    shared = shared_parameter_count(model)
    budget = blocks[0] + n_families * sum(blocks[1:]) + sum(heads.values())
    dis = 1.0 - np.asarray(affinity)
    parts, _, _ = beam_search(dis, blocks, [heads[n] for n in names], budget, beam=10)
    tree = {**tree_to_dict(parts, names, blocks, [heads[n] for n in names], dis), "tasks": names,
            "budget": budget + shared, "search": "beam (n=10)", "shared_params": shared}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "tree.json", tree)
    return tree


def run_demo(out: Path, seeds: list[int], steps: int, jobs: int, overwrite: bool, command: str) -> dict[str, Any]:
    from sharewise.analysis.families import adjusted_rand
    from sharewise.pipelines.families import METHOD_TITLE, discover, markdown, plot_matrices
    from sharewise.reporting.compare import markdown_table, write_comparison
    from sharewise.reporting.report import write_report
    from sharewise.reporting.tree_plots import plot_tree
    from sharewise.sweep import run_grid

    def show(res: Any) -> None:
        status = res.message if res.ok else "FAILED: " + res.message.strip().splitlines()[-1]
        print(f"  {res.scheme:<16} seed {res.seed}: {status}  ({res.seconds:.1f} s)", flush=True)

    cfg = demo_config(steps)
    results = run_grid(cfg, SCHEMES, seeds, out, None, jobs=jobs, on_result=show, overwrite=overwrite,
                       command=command)
    tree = rsa_tree(out / "single_task" / f"seed{seeds[0]}", 3, out / "tree")
    branched_cfg = {**cfg, "scheme": "branched", "scheme_options": {"tree": str((out / "tree" / "tree.json").resolve())}}
    results += run_grid(branched_cfg, ["branched"], seeds, out, None, jobs=jobs, on_result=show, overwrite=overwrite,
                        command=command)
    failed = [r for r in results if not r.ok]
    if failed:
        from sharewise.errors import TrainingError

        raise TrainingError(f"{len(failed)} demo runs failed: " + "; ".join(
            f"{r.scheme} seed {r.seed}: {r.message.strip().splitlines()[-1]}" for r in failed))
    schemes = SCHEMES + ["branched"]
    run_dirs = {s: [out / s / f"seed{seed}" for seed in seeds] for s in schemes}
    comparison = write_comparison(out, run_dirs)
    found = discover(out, seeds)
    families = found["families"]
    leaves = {t: g for g, group in enumerate(tree["partitions"][-1]) for t in group}
    tree_ari = adjusted_rand(families, [leaves[n] for n in found["tasks"]])
    found["rsa_tree"] = {"partitions": tree["partitions"], "ari": tree_ari}
    from sharewise.training.io import write_json

    write_json(out / "families.json", found)  # atomic, like every result file
    table = markdown(found) + f"\n| RSA tree (branched, last depth's groups, seed {seeds[0]}) | {tree_ari:.2f} | | |"

    def families_section(doc: Any) -> None:
        doc.heading("Which method finds the planted families?")
        doc.para("Nine tasks in three planted families; each method's similarity is clustered into three groups "
                 "(average linkage) and scored by the adjusted Rand index (1: the planted families exactly).")
        doc.markdown_table(table)
        doc.figure("families", plot_matrices(found)[0], "Task similarity of each method (tasks ordered by family)")
        doc.figure("rsa_tree", plot_tree(tree["partitions"], title=f"RSA tree, ARI {tree_ari:.2f}")[0],
                   "The branched tree RSA found (budget: one shared first block, three copies of later blocks)")

    finished = [d for dirs in run_dirs.values() for d in dirs]
    html, _ = write_report(finished, out, sections=[families_section])
    print()
    print(markdown_table(comparison))
    print()
    print(table)
    return {"comparison": comparison, "families": found, "report": html,
            "titles": METHOD_TITLE}
