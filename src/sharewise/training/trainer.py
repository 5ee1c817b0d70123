"""The training loop (soft-ordering paper App. A): one visible loop for every scheme.

Joint mode (the paper's): each step draws one batch per task, sums the task losses (plus the
scheme's regulariser) and makes one update. Alternating mode (Gumbel-Matrix paper's): each step
visits every task once in a shuffled order with one single-task update each. Validation loss is
the sum of per-task validation losses; the best state by it is kept and evaluated on the test
split at the end.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from sharewise.config.schema import RunConfig
from sharewise.data.sampler import StackedTaskSampler
from sharewise.errors import TrainingError
from sharewise.model import MultiTaskModel
from sharewise.tasks.losses import MultiTaskLoss
from sharewise.tasks.spec import TaskData
from sharewise.training.evaluate import evaluate
from sharewise.training.io import append_jsonl
from sharewise.training.optim import build_optimizer


@dataclass
class TrainResult:
    best_step: int
    best_val_loss: float
    best_state: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    optimizer_groups: list[dict[str, Any]] = field(default_factory=list)


def _mean_error(results: dict[str, dict[str, float]]) -> float | None:
    errs = [r["error"] for r in results.values() if "error" in r]
    return sum(errs) / len(errs) if errs else None


class Trainer:
    """Trains ``model`` on ``tasks`` as ``cfg.train`` says; writes ``metrics.jsonl`` if given a run dir."""

    def __init__(self, cfg: RunConfig, model: MultiTaskModel, tasks: Sequence[TaskData],
                 run_dir: Path | None = None, progress: Callable[[int, int, float], None] | None = None) -> None:
        self.cfg, self.model, self.tasks, self.run_dir = cfg, model, list(tasks), run_dir
        self.loss_fn = MultiTaskLoss(self.tasks)
        self.optimizer, self.optimizer_groups = build_optimizer(model, cfg.train)
        self.sampler = StackedTaskSampler(self.tasks, cfg.train.batch_size,
                                          torch.Generator().manual_seed(cfg.seed + 1))
        self.order_generator = torch.Generator().manual_seed(cfg.seed + 2)
        self.progress = progress
        self.update_count = 0

    # -- one step -------------------------------------------------------------------------
    def _update(self, x: torch.Tensor, y: torch.Tensor, tasks: Sequence[int] | None, step: int) -> float:
        self.model.core.on_train_step(self.update_count)
        out = self.model(x, tasks)  # [T', B, O]
        losses, _ = self.loss_fn(out, y, tasks)  # [T']
        total = losses.sum()
        reg = self.model.core.regularizer()
        if reg is not None:
            total = total + reg
        value = float(total.detach())
        if not math.isfinite(value):
            names = [self.tasks[t].name for t in (tasks if tasks is not None else range(len(self.tasks)))]
            bad = [n for n, v in zip(names, losses.tolist()) if not math.isfinite(v)]
            raise TrainingError(
                f"the training loss became {value} at step {step} "
                f"({'tasks ' + ', '.join(bad) if bad else 'the scheme regulariser'}). The last good "
                f"checkpoint is kept. Try a lower learning rate (train.lr), gradient clipping "
                f"(train.grad_clip=1.0), or check the inputs for NaN/inf values."
            )
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if self.cfg.train.grad_clip is not None:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.grad_clip)
            if not torch.isfinite(norm):
                raise TrainingError(
                    f"the gradient norm became {float(norm)} at step {step}. Try a lower learning rate "
                    f"(train.lr) or a smaller train.grad_clip."
                )
        self.optimizer.step()
        self.update_count += 1
        return value

    def train_step(self, step: int) -> float:
        x, y = self.sampler.next()  # [T, B, *in], [T, B, Y]
        if self.cfg.train.mode == "joint":
            return self._update(x, y, None, step)
        order = torch.randperm(len(self.tasks), generator=self.order_generator).tolist()
        return sum(self._update(x[t:t + 1], y[t:t + 1], [t], step) for t in order)

    # -- evaluation -----------------------------------------------------------------------
    def evaluate_all(self, step: int, train_loss: float, started: float) -> dict[str, Any]:
        bs = self.cfg.train.eval_batch_size
        val = evaluate(self.model, self.loss_fn, self.tasks, "val", bs)
        test = evaluate(self.model, self.loss_fn, self.tasks, "test", bs)
        record = {
            "step": step,
            "train_loss": train_loss,
            "val_loss": sum(r["loss"] for r in val.values()) if val else None,
            "mean_val_error": _mean_error(val),
            "mean_test_error": _mean_error(test),
            "mean_test_loss": sum(r["loss"] for r in test.values()) / len(test),
            "val": val,
            "test": test,
            "scheme": self.model.core.step_metrics(),
            "elapsed_s": time.perf_counter() - started,
        }
        if self.run_dir is not None:
            append_jsonl(self.run_dir / "metrics.jsonl", record)
        return record

    def fit(self) -> TrainResult:
        cfg = self.cfg.train
        started = time.perf_counter()
        self.model.train()
        best_val, best_step = float("inf"), 0
        best_state = copy.deepcopy(self.model.state_dict())
        history: list[dict[str, Any]] = []
        running, count = 0.0, 0
        for step in range(1, cfg.steps + 1):
            running += self.train_step(step)
            count += 1
            if step % cfg.eval_every == 0 or step == cfg.steps:
                record = self.evaluate_all(step, running / count, started)
                history.append(record)
                running, count = 0.0, 0
                # Without a validation split, select by training loss (documented in the summary).
                score = record["val_loss"] if record["val_loss"] is not None else record["train_loss"]
                if score < best_val:
                    best_val, best_step = score, step
                    best_state = copy.deepcopy(self.model.state_dict())
            if self.progress is not None:
                self.progress(step, cfg.steps, running / max(count, 1))
        return TrainResult(best_step, best_val, best_state, history, self.optimizer_groups)
