"""Task affinity from single-task networks (Branched multi-task networks, Alg. 1 lines 2-7).

1. Train one network per task: the ``single_task`` scheme gives every task its own copy of the
   core blocks and its own head, trained under identical conditions (same data order, same
   optimiser); its joint step with the summed loss equals T separate trainings because no
   parameter is shared. Training goes through the library's runner (``sharewise.runner.run``),
   so the single-task run is an ordinary run directory that ``--reuse`` can point at and that
   doubles as the Delta_m baseline.
2. RDMs of each task's column after every block on K held-out inputs (``analysis.rdm_stack``).
3. Affinity ``A[d, i, j]`` (``analysis.task_affinity``) -> ``affinity.json`` + one heatmap per
   location, with the parameter counts the tree search needs (``block_params``, ``head_params``).

This module imports training (it runs it), so it lives outside the pure ``analysis`` package.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sharewise.analysis import rdm_stack, task_affinity
from sharewise.components.layer_bank import ModuleLayerBank
from sharewise.components.task_modules import TaskModules
from sharewise.config import apply_overrides, config_to_dict, parse_config, read_yaml
from sharewise.data.streaming import require_in_memory
from sharewise.errors import ConfigError
from sharewise.model import MultiTaskModel
from sharewise.sharing.core_spec import column_layers
from sharewise.sharing.hard import SingleTask
from sharewise.tasks.spec import TaskData
from sharewise.rundir import check_output_dir, claim_output_dir, load_best_state, read_summary
from sharewise.training.io import write_json


def heldout_inputs(tasks: Sequence[TaskData], k: int) -> tuple[Tensor, str]:
    """The first K inputs of the validation split (test split if there is none), shared by all tasks."""
    split = "val" if tasks[0].x_val.shape[0] else "test"
    x = tasks[0].split(split)[0]
    if k > x.shape[0]:
        raise ConfigError(f"K={k} held-out inputs were asked for, but the {split} split has only "
                          f"{x.shape[0]} inputs; pass --inputs {x.shape[0]} or fewer")
    if k < 2:
        raise ConfigError(f"K={k}: an RDM needs at least 2 held-out inputs")
    for t in tasks[1:]:
        other = t.split(split)[0]
        if other.shape != x.shape or not torch.equal(other[:k], x[:k]):
            raise ConfigError(f"task {t.name!r} has other {split} inputs than task {tasks[0].name!r}; RDM-based "
                              f"task affinity compares tasks on the same inputs (use a shared-input task set)")
    return x[:k], split


@torch.no_grad()
def column_features(model: MultiTaskModel, x: Tensor, task: int) -> list[Tensor]:
    """Features of task ``task``'s column after each core block: D tensors ``[K, *f_d]``."""
    core = model.scheme
    if not isinstance(core, SingleTask):
        raise ConfigError(f"affinity needs a single_task model, got scheme {type(core).__name__}")
    was = model.training
    model.eval()
    h = model.encoders(x.unsqueeze(0), [task])  # [1, K, *f]
    out = []
    for d in range(core.depth):
        h = core.bank.forward_selected(h, column_layers([task], d, core.depth))  # [1, K, *f_d]
        out.append(h[0])
    model.train(was)
    return out


def parameter_counts(model: MultiTaskModel, task_names: Sequence[str]) -> tuple[list[int], dict[str, int]]:
    """(params of each block f_1..f_D, params of each task's own modules: encoder + head).

    Read off a single-task model: its core holds T copies of each block. Outside the core, the
    user's per-task modules (:class:`TaskModules`) are counted task by task; the library's stacked
    encoders / heads are of equal size per task (padded to the widest task), so they are split
    evenly. Modules shared by every task are not any task's: see :func:`shared_parameter_count`.
    """
    core = model.scheme
    n_tasks, depth = len(task_names), core.depth  # type: ignore[union-attr]
    bank = core.bank  # type: ignore[union-attr]
    if isinstance(bank, ModuleLayerBank):
        blocks = [sum(p.numel() for p in bank.layers[d].parameters()) for d in range(depth)]
    else:
        blocks = [sum(p.numel() for p in bank.parameters()) // (n_tasks * depth)] * depth
    own = [0] * n_tasks
    for part in (model.encoders, model.heads):
        if isinstance(part, TaskModules):
            counts, _ = part.task_parameter_counts(n_tasks)
        elif _one_for_all(part):
            counts = [0] * n_tasks  # counted in shared_parameter_count
        else:
            total = sum(p.numel() for p in part.parameters())
            if total % n_tasks:
                raise ConfigError(f"the {total} parameters of the {type(part).__name__} outside the core do not "
                                  f"split evenly over {n_tasks} tasks")
            counts = [total // n_tasks] * n_tasks
        own = [a + b for a, b in zip(own, counts)]
    return [int(b) for b in blocks], {name: int(c) for name, c in zip(task_names, own)}


def shared_parameter_count(model: MultiTaskModel) -> int:
    """Parameters outside the core used by every task (a user's shared encoder or head).

    They are the same in every tree, so the tree search adds them to its count (``shared_params``
    in ``affinity.json``) and the built network's size equals the tree's.
    """
    return (sum(part.task_parameter_counts(1)[1] for part in (model.encoders, model.heads)
                if isinstance(part, TaskModules))
            + sum(sum(p.numel() for p in part.parameters()) for part in (model.encoders, model.heads)
                  if _one_for_all(part)))


def _one_for_all(part: Any) -> bool:
    """A library encoder / head with one map for every task (``model.head.shared``)."""
    return getattr(getattr(part, "heads", part), "shared", None) is True


def compute_affinity(model: MultiTaskModel, tasks: Sequence[TaskData], k: int) -> dict[str, Any]:
    """The ``affinity.json`` content for a trained single-task model (Alg. 1 lines 4-6)."""
    x, split = heldout_inputs(tasks, k)
    names = [t.name for t in tasks]
    rdms = {t.name: rdm_stack(column_features(model, x, i)) for i, t in enumerate(tasks)}  # [D, K, K] each
    affinity = task_affinity(rdms)  # [D, N, N]
    blocks, heads = parameter_counts(model, names)
    shared = shared_parameter_count(model)
    return {"tasks": names, "locations": [f"block{d + 1}" for d in range(affinity.shape[0])],
            "affinity": affinity.tolist(), "block_params": blocks, "head_params": heads,
            "shared_params": shared,
            "heldout": {"split": split, "k": k}}


def _load_run(run_dir: Path, cfg_dict: dict[str, Any], tasks: Sequence[TaskData]) -> MultiTaskModel:
    """Rebuild a finished single-task run's model and load its best state; check its tasks."""
    from sharewise.builders import build_model

    summary_path = run_dir / "summary.json"
    if not summary_path.is_file() or not (run_dir / "best.pt").is_file():
        raise ConfigError(f"--reuse {str(run_dir)!r} is not a finished run directory (summary.json, best.pt)")
    summary = read_summary(run_dir)
    if summary.get("scheme") != "single_task":
        raise ConfigError(f"--reuse {str(run_dir)!r} is a {summary.get('scheme')!r} run; affinity needs a "
                          f"single_task run")
    theirs, ours = list(summary["tasks"]), [t.name for t in tasks]
    if theirs != ours:
        raise ConfigError(f"--reuse {str(run_dir)!r} was trained on tasks {theirs} but the config has "
                          f"tasks {ours}; reuse a run of this config")
    from sharewise.sweep import cell_differences

    run_cfg = parse_config(read_yaml(run_dir / "config.yaml"))
    diffs = [d for d in cell_differences(run_dir, config_to_dict(parse_config(cfg_dict))) if not d.startswith("name:")]
    if diffs:
        shown = "; ".join(diffs[:6]) + (f"; and {len(diffs) - 6} more" if len(diffs) > 6 else "")
        raise ConfigError(f"--reuse {str(run_dir)!r} was run with another configuration than asked ({shown}); its "
                          f"networks would give a stale affinity. Reuse a run of this config (the same --steps, "
                          f"--seed and overrides), or leave out --reuse to train one")
    model = build_model(run_cfg, tasks)
    load_best_state(model, run_dir)
    return model


def affinity_run(cfg_dict: dict[str, Any], out: str | Path, *, data_dir: str | None = None,
                 reuse: str | Path | None = None, k: int = 500, plots: bool = True,
                 progress: bool = False) -> dict[str, Any]:
    """Train (or reuse) the single-task networks, then write ``affinity.json`` and heatmaps to ``out``."""
    from sharewise.data.tasksets import build_tasks
    from sharewise.runner import run

    out = check_output_dir(out)
    if reuse is not None:
        read_summary(reuse)  # a finished run directory, checked before any data is loaded
    cfg_dict = apply_overrides(cfg_dict, ["scheme=single_task"])
    cfg_dict["scheme_options"] = {}
    cfg = parse_config(cfg_dict)
    tasks = build_tasks(cfg.tasks.builder, data_dir=data_dir, seed=cfg.seed, options=cfg.tasks.options)
    require_in_memory(tasks, "affinity")
    heldout_inputs(tasks, k)  # fail on a too-large K before any training
    run_dir = Path(reuse) if reuse is not None else out / "single_task"
    if reuse is None:
        claim_output_dir(out)
        run(cfg_dict, run_dir, data_dir=data_dir, overwrite=True, progress=progress)
    model = _load_run(run_dir, cfg_dict, tasks)
    result = {**compute_affinity(model, tasks, k), "single_task_run": str(run_dir)}
    claim_output_dir(out)
    write_json(out / "affinity.json", result)
    if plots:
        from sharewise.reporting.plots import save
        from sharewise.reporting.tree_plots import plot_affinity

        for d, loc in enumerate(result["locations"]):
            fig, _ = plot_affinity(result["affinity"][d], result["tasks"], title=f"task affinity after {loc}")
            save(fig, out / f"affinity_{loc}.png", dpi=120)
    return result
