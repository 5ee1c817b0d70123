"""The run summary, decided once: the headline metric, the mean error and the selection score.

Everything that reports how a run did reads these functions: the CLI's result line, the sweep's
cell lines, the comparison table and curves, the report and the run plots. The trainer keeps its
best state by :func:`selection_score`; :func:`summarise` writes ``summary.json``.

- Headline metric: the mean test error over tasks when every task is a classification task,
  else the mean test loss (regression tasks have no error rate) (:func:`headline_key`).
- Mean error: the unweighted mean of the per-task error rates; None without classification tasks.
- Selection score: lower is better, see :func:`selection_score` (soft-ordering App. A: the
  summed validation loss).

Importing this module loads no torch; :func:`summarise` imports what it evaluates with.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

ERROR, LOSS = "mean_test_error", "mean_test_loss"


def mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def mean_error(results: Mapping[str, Mapping[str, Any]]) -> float | None:
    """The mean of the per-task ``error`` entries (None when no task has one)."""
    return mean(r["error"] for r in results.values() if r.get("error") is not None)


def selection_score(record: Mapping[str, Any], rule: str) -> float:
    """Lower is better. ``val_loss``: the summed per-task validation loss (soft-ordering App. A);
    ``val_error``: the mean validation error (classification tasks); ``last``: the latest state.
    Without a validation split every rule but ``last`` falls back to the training loss."""
    if rule == "last":
        return -float(record["step"])
    if rule == "val_error" and record.get("mean_val_error") is not None:
        return float(record["mean_val_error"])
    return float(record["val_loss"] if record.get("val_loss") is not None else record["train_loss"])


def selection_label(rule: str, has_val: bool) -> str:
    """What :func:`selection_score` measured, in words (``summary.json``'s ``selection``)."""
    if rule == "last":
        return "last evaluated state"
    if not has_val:
        return "training loss (no validation split)"
    return "mean validation error" if rule == "val_error" else "summed validation loss"


def headline_key(summaries: Iterable[Mapping[str, Any]]) -> str:
    """``mean_test_error`` when every summary (or metrics record) has one, else ``mean_test_loss``:
    runs compared together are compared on one metric."""
    items = list(summaries)
    return ERROR if items and all(s.get(ERROR) is not None for s in items) else LOSS


def headline(summary: Mapping[str, Any]) -> str:
    """The headline result in words: ``mean test error 12.34 %`` or ``mean test loss 0.1234``
    (and the mean R² over regression tasks where there are any)."""
    text = (f"mean test error {100 * summary[ERROR]:.2f} %" if headline_key([summary]) == ERROR
            else f"mean test loss {summary[LOSS]:.4f}")
    if summary.get("mean_test_r2") is not None:
        text += f", mean test R² {summary['mean_test_r2']:.3f}"
    return text


def summarise(cfg: Any, tasks: list[Any], model: Any, result: Any, wall_time: float, loss_fn: Any) -> dict[str, Any]:
    """``summary.json``: per-task test metrics of the selected state, their means, the selection
    score and rule, the learned structure and the run's metadata."""
    from sharewise.config import config_to_dict
    from sharewise.data.streaming import split_size
    from sharewise.training.evaluate import evaluate
    from sharewise.training.health import training_warnings
    from sharewise.training.metadata import run_metadata

    # The best state was evaluated on val and test when it was selected: reuse that record rather
    # than evaluate the same weights twice (a third of a short run's fixed cost).
    chosen = next((r for r in result.history if r["step"] == result.best_step), None)
    bs, w = cfg.train.eval_batch_size, cfg.train.data_workers
    test = chosen["test"] if chosen is not None else evaluate(model, loss_fn, tasks, "test", bs, w)
    train = evaluate(model, loss_fn, tasks, "train", bs, w)
    val = chosen["val"] if chosen is not None else evaluate(model, loss_fn, tasks, "val", bs, w)
    per_task: dict[str, Any] = {}
    for task in tasks:
        entry: dict[str, Any] = {"kind": task.kind, "test_loss": test[task.name]["loss"],
                                 "n_test": test[task.name]["n"]}
        keys = ("rmse", "mae", "r2") if task.kind == "regression" else ("error", "auc")
        for key in keys:
            if test[task.name].get(key) is not None:
                entry[f"test_{key}"] = test[task.name][key]
        main = keys[0]
        entry[f"train_{main}"] = train[task.name][main]
        if task.name in val:
            entry[f"val_{main}"] = val[task.name][main]
        per_task[task.name] = entry
    means = {f"mean_test_{key}": mean(e[f"test_{key}"] for e in per_task.values() if f"test_{key}" in e)
             for key in ("rmse", "mae", "r2", "auc")}
    return {
        "name": cfg.name,
        "scheme": cfg.scheme,
        "seed": cfg.seed,
        "steps": cfg.train.steps,
        "wall_time_s": round(wall_time, 3),
        "best_step": result.best_step,
        "selection_score": result.best_score,
        "selection": selection_label(cfg.train.select_by, any(split_size(t, "val") for t in tasks)),
        "tasks": per_task,
        ERROR: mean(e["test_error"] for e in per_task.values() if "test_error" in e),
        LOSS: mean(e["test_loss"] for e in per_task.values()),
        **{k: v for k, v in means.items() if v is not None},
        "structure": {"tasks": [t.name for t in tasks], **model.scheme.learned_structure()},
        "warnings": [*model.scheme.structure_warnings([t.name for t in tasks]),
                     *training_warnings(tasks, result.history)],
        "optimizer_groups": result.optimizer_groups,
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "data": {t.name: t.summary() for t in tasks},
        "config": config_to_dict(cfg),
        "meta": run_metadata(),
    }
