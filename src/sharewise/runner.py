"""One run, end to end: validate, load data, build, train, evaluate, write the run directory.

Everything that can fail on user input (config, data files, shapes) fails *before* the run
directory is touched, so a bad invocation never leaves half-written outputs. Results files are
written atomically.

Run directory layout::

    config.yaml      the resolved configuration (all defaults filled in)
    metrics.jsonl    one line per evaluation (per-task val/test loss and error, scheme metrics)
    summary.json     final per-task test metrics of the best checkpoint + run metadata
    best.pt          the best model state (by summed validation loss)
    plots/*.png      learning curves and the learned structure
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
import yaml

from sharewise.builders import build_model
from sharewise.config import RunConfig, config_to_dict, parse_config
from sharewise.data.tasksets import build_tasks
from sharewise.errors import ConfigError
from sharewise.tasks.spec import TaskData
from sharewise.training.evaluate import evaluate
from sharewise.training.io import save_torch, write_json, write_text
from sharewise.training.metadata import run_metadata
from sharewise.training.trainer import Trainer, TrainResult


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)


def _named_structure(structure: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """Attach task names to per-task structure lists (they are ordered by task index)."""
    return {"tasks": names, **structure}


def summarise(cfg: RunConfig, tasks: list[TaskData], model: Any, result: TrainResult,
              wall_time: float, loss_fn: Any) -> dict[str, Any]:
    test = evaluate(model, loss_fn, tasks, "test", cfg.train.eval_batch_size)
    train = evaluate(model, loss_fn, tasks, "train", cfg.train.eval_batch_size)
    val = evaluate(model, loss_fn, tasks, "val", cfg.train.eval_batch_size)
    per_task: dict[str, Any] = {}
    for task in tasks:
        entry: dict[str, Any] = {"kind": task.kind, "test_loss": test[task.name]["loss"]}
        if task.kind == "regression":
            entry["test_rmse"] = test[task.name]["rmse"]
            entry["train_rmse"] = train[task.name]["rmse"]
        else:
            entry["test_error"] = test[task.name]["error"]
            entry["train_error"] = train[task.name]["error"]
            if task.name in val:
                entry["val_error"] = val[task.name]["error"]
        per_task[task.name] = entry
    errors = [e["test_error"] for e in per_task.values() if "test_error" in e]
    return {
        "name": cfg.name,
        "scheme": cfg.scheme,
        "seed": cfg.seed,
        "steps": cfg.train.steps,
        "wall_time_s": round(wall_time, 3),
        "best_step": result.best_step,
        "best_val_loss": result.best_val_loss,
        "selection": "summed validation loss" if any(t.x_val.shape[0] for t in tasks) else "training loss (no validation split)",
        "tasks": per_task,
        "mean_test_error": sum(errors) / len(errors) if errors else None,
        "mean_test_loss": sum(e["test_loss"] for e in per_task.values()) / len(per_task),
        "structure": _named_structure(model.core.learned_structure(), [t.name for t in tasks]),
        "optimizer_groups": result.optimizer_groups,
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "data": {t.name: t.summary() for t in tasks},
        "meta": run_metadata(),
    }


def prepare(cfg_dict: dict[str, Any], data_dir: str | None) -> tuple[RunConfig, list[TaskData], Any]:
    """Validate, load tasks and build the model: everything that can fail on bad input."""
    cfg = parse_config(cfg_dict)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    tasks = build_tasks(cfg.tasks.builder, data_dir=data_dir, seed=cfg.seed, options=cfg.tasks.options)
    if not tasks:
        raise ConfigError(f"task set {cfg.tasks.builder!r} produced no tasks; check tasks.options")
    seed_everything(cfg.seed)
    model = build_model(cfg, tasks)
    return cfg, tasks, model


def check_out_dir(out: Path, overwrite: bool) -> None:
    if (out / "summary.json").exists() and not overwrite:
        raise ConfigError(f"output directory {str(out)!r} already holds a finished run (summary.json); "
                          f"choose another --out or pass --overwrite")


def run(cfg_dict: dict[str, Any], out: str | Path, data_dir: str | None = None, overwrite: bool = False,
        plots: bool = True, progress: bool = False) -> dict[str, Any]:
    """Train one configuration and write its run directory; returns the summary."""
    out = Path(out)
    check_out_dir(out, overwrite)
    cfg, tasks, model = prepare(cfg_dict, data_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.jsonl").unlink(missing_ok=True)
    write_text(out / "config.yaml", yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    started = time.perf_counter()
    bar = None
    if progress:
        from sharewise.reporting.progress import ProgressBar

        bar = ProgressBar(cfg.train.steps, label=f"{cfg.scheme} seed {cfg.seed}")
    trainer = Trainer(cfg, model, tasks, run_dir=out, progress=bar)
    result = trainer.fit()
    if bar is not None:
        bar.close()
    model.load_state_dict(result.best_state)
    save_torch(out / "best.pt", {"model": result.best_state, "step": result.best_step})
    summary = summarise(cfg, tasks, model, result, time.perf_counter() - started, trainer.loss_fn)
    write_json(out / "summary.json", summary)
    if plots:
        from sharewise.reporting.run_plots import plot_run

        plot_run(out)
    return summary
