"""The training loop (soft-ordering paper App. A): one visible loop for every scheme.

Joint mode (the paper's): each step draws one batch per task, sums the task losses (plus the
scheme's regulariser) and makes one update. Alternating mode (Gumbel-Matrix paper's): each step
visits every task once in a shuffled order with one single-task update each. Validation loss is
the sum of per-task validation losses; the best state by it is kept and evaluated on the test
split at the end.

Guarded: a non-finite loss or gradient norm stops the run with a :class:`TrainingError` naming the
step, the task(s) and the quantity, before the optimiser applies it and before any checkpoint is
written, so the last checkpoint stays good. The gradient norm is computed every step (one fused
``foreach`` norm: ~1 % of a step at UCI sizes, see ``benchmarks/bench_grad_check.py``).

Resumable: :meth:`Trainer.state_dict` holds everything :mod:`sharewise.training.checkpoint` lists;
``fit`` continues from ``self.step``, writes ``checkpoint.pt`` every ``train.checkpoint_every``
steps, at the end, and when a :class:`StopRequest` reports SIGINT/SIGTERM.

Data-parallel: given a :class:`~sharewise.training.distributed.DistContext` with several ranks,
the step runs through DistributedDataParallel on this rank's shard of the global batch and the
ranks agree on the loss and on stopping; see :mod:`sharewise.training.distributed`. The model
stays on the device it was given; batches are moved to it.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from sharewise.config.schema import RunConfig
from sharewise.data.streaming import make_sampler
from sharewise.errors import TrainingError
from sharewise.model import MultiTaskModel
from sharewise.summary import mean_error, selection_score  # noqa: F401 (selection_score: re-exported)
from sharewise.tasks.losses import MultiTaskLoss
from sharewise.tasks.spec import TaskData
from sharewise.training import checkpoint as ckpt
from sharewise.training import distributed
from sharewise.training.balancing import build_balancer
from sharewise.training.distributed import SINGLE, DistContext
from sharewise.training.evaluate import evaluate
from sharewise.training.io import append_jsonl
from sharewise.training.optim import build_optimizer
from sharewise.training.schedule import LRSchedule
from sharewise.training.signals import RunStopped, StopRequest


class MetricsLogger(Protocol):
    def log(self, record: dict[str, Any]) -> None: ...


@dataclass
class TrainResult:
    best_step: int
    best_score: float  # the selection score of the kept state (see selection_score; lower is better)
    best_state: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    optimizer_groups: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0


_ADVICE = ("Try a lower learning rate (train.lr), gradient clipping (train.grad_clip=1.0), or check "
           "the inputs for NaN/inf values.")


def _total_norm(grads: list[torch.Tensor]) -> torch.Tensor:
    """The 2-norm of all ``grads`` together, as ``torch.nn.utils.get_total_norm`` computes it (one
    fused ``foreach`` norm, then the norm of the norms), without its per-call grouping by device
    and dtype when there is one of each (measured: ~2/3 of the guard's time at small sizes)."""
    if not grads:
        return torch.zeros(())
    first = grads[0]
    if any(g.device != first.device or g.dtype != first.dtype for g in grads):
        return torch.nn.utils.get_total_norm(grads, foreach=True)
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads, 2.0)), 2.0)


class Trainer:
    """Trains ``model`` on ``tasks`` as ``cfg.train`` says; writes ``metrics.jsonl`` and
    ``checkpoint.pt`` if given a run dir."""

    def __init__(self, cfg: RunConfig, model: MultiTaskModel, tasks: Sequence[TaskData],
                 run_dir: Path | None = None, progress: Callable[[int, int, float], None] | None = None,
                 loggers: Sequence[MetricsLogger] = (), stop: StopRequest | None = None,
                 dist: DistContext = SINGLE) -> None:
        """``run_dir`` None: write nothing (pass None on every rank but 0). ``dist``: this rank."""
        self.cfg, self.model, self.tasks, self.run_dir, self.dist = cfg, model, list(tasks), run_dir, dist
        self.device = next(iter(model.parameters()), torch.empty(0)).device
        self.loss_fn = MultiTaskLoss(self.tasks).to(self.device)
        self.optimizer, self.optimizer_groups = build_optimizer(model, cfg.train)
        # Loss weighting / gradient aggregation (training/balancing.py); None: summed losses.
        self.balancer = build_balancer(cfg.train, model, [t.kind for t in self.tasks], dist)
        if self.balancer is not None and self.balancer.parameters():
            group = {"name": "loss_weights", "params": self.balancer.parameters(), "weight_decay": 0.0,
                     "lr": cfg.train.weighting_lr if cfg.train.weighting_lr is not None else cfg.train.lr}
            stacked = {id(p) for p in self.balancer.task_stacked_parameters()}  # uncertainty's s_t: task t's
            self.optimizer.add_param_group(group, per_task=stacked)
            self.optimizer_groups.append({"name": "loss_weights", "lr": group["lr"],
                                          "n_params": sum(p.numel() for p in group["params"])})
        # train.lr_schedule / warmup_steps: every group's configured rate times one factor per step.
        self.schedule = LRSchedule([g["lr"] for g in self.optimizer.param_groups], cfg.train.steps,
                                   cfg.train.lr_schedule, cfg.train.warmup_steps, cfg.train.min_lr_ratio)
        # Every rank draws the same global batch and keeps its slice (train.batch_size per rank).
        # Streamed (Dataset) tasks draw the same indices and fetch them through DataLoader workers.
        self.sampler = make_sampler(self.tasks, cfg.train.batch_size * dist.world,
                                    torch.Generator().manual_seed(cfg.seed + 1),
                                    shard=(dist.rank, dist.world), num_workers=cfg.train.data_workers)
        self.step_model: torch.nn.Module = model  # what the training step calls (DDP wraps it in fit)
        self._signum: int | None = None  # the stop signal the ranks agreed on (data-parallel only)
        self.order_generator = torch.Generator().manual_seed(cfg.seed + 2)
        self.progress, self.loggers, self.stop = progress, list(loggers), stop
        self._params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        # train.precision=bf16: the forward pass runs under autocast (matmuls and convolutions in
        # bfloat16); parameters, gradients, optimiser state and the losses stay float32.
        self._bf16 = cfg.train.precision == "bf16"
        # Loop state (all of it is in state_dict()).
        self.update_count = 0
        self.step = 0
        self.best_score, self.best_step = float("inf"), 0
        self.best_state: dict[str, Any] | None = None
        self.history: list[dict[str, Any]] = []
        self.running, self.count = 0.0, 0
        self.elapsed = 0.0  # training seconds spent before the current fit() (earlier processes)
        self.checkpoint_step: int | None = None

    # -- guards ---------------------------------------------------------------------------
    def _task_names(self, tasks: Sequence[int] | None) -> list[str]:
        return [self.tasks[t].name for t in (tasks if tasks is not None else range(len(self.tasks)))]

    def _kept(self) -> str:
        if self.run_dir is None:
            return ""
        if self.checkpoint_step is None:
            return " No checkpoint had been written yet."
        return (f" The last good checkpoint ({self.run_dir / ckpt.CHECKPOINT_NAME}, step "
                f"{self.checkpoint_step}) is kept.")

    def _check_grads(self, tasks: Sequence[int] | None, step: int) -> None:
        if self.cfg.train.grad_clip is not None:
            norm = torch.nn.utils.clip_grad_norm_([p for _, p in self._params], self.cfg.train.grad_clip)
        else:
            norm = _total_norm([p.grad for _, p in self._params if p.grad is not None])
        if bool(torch.isfinite(norm)):
            return
        bad = [n for n, p in self._params if p.grad is not None and not bool(torch.isfinite(p.grad).all())]
        where = (f"non-finite gradient in {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}" if bad else
                 "every gradient is finite, but their summed norm overflowed float32: the gradients are huge")
        raise TrainingError(
            f"the gradient norm became {float(norm)} at step {step} (update of task(s) "
            f"{', '.join(self._task_names(tasks))}; {where}); the update was not applied.{self._kept()} {_ADVICE}"
        )

    def _check_parameters(self, step: int) -> None:
        """Before a checkpoint: an update with a finite gradient can still overflow a weight."""
        bad = [n for n, p in self._params if not bool(torch.isfinite(p).all())]
        if bad:
            raise TrainingError(
                f"parameter(s) {', '.join(bad[:5])} became non-finite at step {step}; the checkpoint "
                f"was not written.{self._kept()} {_ADVICE}"
            )

    # -- one step -------------------------------------------------------------------------
    def _update(self, x: torch.Tensor, y: torch.Tensor, tasks: Sequence[int] | None, step: int) -> float:
        self.model.scheme.on_update(self.update_count)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self._bf16):
            out = self.step_model(x, tasks)  # [T', B, O]
        losses, _ = self.loss_fn(out.float(), y, tasks, count_errors=False)  # [T'], always in float32
        total = losses.sum()
        reg = self.model.scheme.regularizer()
        if reg is not None:
            total = total + reg
        value = float(total.detach())
        if self.dist.enabled:  # mean over ranks (non-finite if any rank's is), and any rank's stop
            value, self._signum = self.dist.agree(value, self.stop.signum if self.stop is not None else None)
        if not math.isfinite(value):
            bad = [n for n, v in zip(self._task_names(tasks), losses.tolist()) if not math.isfinite(v)]
            where = "the scheme regulariser" if not self.dist.enabled else "another rank's batch"
            raise TrainingError(
                f"the training loss became {value} at step {step} "
                f"({'task(s) ' + ', '.join(bad) if bad else where}).{self._kept()} {_ADVICE}"
            )
        self.optimizer.zero_grad(set_to_none=True)
        if self.balancer is None:
            total.backward()
        else:
            self.balancer.backward(losses, reg, tasks)
        self._check_grads(tasks, step)
        self.optimizer.step(tasks)  # per-task state: only these tasks' slices move
        self.update_count += 1
        return value

    def train_step(self, step: int) -> float:
        if self.schedule.active:
            self.schedule.apply(self.optimizer.param_groups, step)
        x, y = self.sampler.next()  # [T, B, *in], [T, B, Y]
        if self.device.type != "cpu":
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        if self.cfg.train.mode == "joint":
            return self._update(x, y, None, step)
        order = torch.randperm(len(self.tasks), generator=self.order_generator).tolist()
        return sum(self._update(x[t:t + 1], y[t:t + 1], [t], step) for t in order)

    # -- evaluation -----------------------------------------------------------------------
    def evaluate_all(self, step: int, train_loss: float, elapsed: float) -> dict[str, Any]:
        bs = self.cfg.train.eval_batch_size
        distributed.sync_buffers(self.model, self.dist)  # every rank evaluates the same model
        val = evaluate(self.model, self.loss_fn, self.tasks, "val", bs, self.cfg.train.data_workers)
        test = evaluate(self.model, self.loss_fn, self.tasks, "test", bs, self.cfg.train.data_workers)
        record = {
            "step": step,
            "train_loss": train_loss,
            "val_loss": sum(r["loss"] for r in val.values()) if val else None,
            "mean_val_error": mean_error(val),
            "mean_test_error": mean_error(test),
            "mean_test_loss": sum(r["loss"] for r in test.values()) / len(test),
            "val": val,
            "test": test,
            "scheme": self.model.scheme.step_metrics(),
            **({"balancing": self.balancer.step_metrics()} if self.balancer is not None else {}),
            "elapsed_s": elapsed,
            **({"lr_factor": self.schedule.factor(step)} if self.schedule.active else {}),
        }
        if self.run_dir is not None:
            append_jsonl(self.run_dir / "metrics.jsonl", record)
        for logger in self.loggers:
            logger.log(record)
        return record

    # -- checkpointing --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "update_count": self.update_count,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": ckpt.global_rng_state(),
            "sampler": self.sampler.state_dict(),
            "order_generator": self.order_generator.get_state(),
            "module_states": ckpt.module_states(self.model),
            "best": {"score": self.best_score, "step": self.best_step, "state": self.best_state},
            "history": self.history,
            "running": {"sum": self.running, "count": self.count},
            "elapsed_s": self.elapsed,
            **({"balancing": self.balancer.state_dict()} if self.balancer is not None else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        if self.balancer is not None:
            if "balancing" not in state:
                raise TrainingError("the checkpoint was written without loss weighting / gradient aggregation "
                                    "(train.weighting=equal, no train.aggregator); resume it with those settings")
            self.balancer.load_state_dict(state["balancing"])
        self.optimizer.load_state_dict(state["optimizer"])
        ckpt.load_module_states(self.model, state["module_states"])  # after the model's own state
        self.sampler.load_state_dict(state["sampler"])
        self.order_generator.set_state(state["order_generator"])
        ckpt.set_global_rng_state(state["rng"])
        if self.dist.rank > 0:  # this rank's own dropout stream
            ranks = state.get("rng_ranks")
            if ranks is not None and len(ranks) == self.dist.world:
                ckpt.set_global_rng_state(ranks[self.dist.rank])
            else:  # written by another number of ranks: a fresh stream per rank and step
                distributed.seed_rank(self.cfg.seed + int(state["step"]), self.dist)
        self.step, self.update_count = int(state["step"]), int(state["update_count"])
        best = state["best"]
        score = best["score"] if "score" in best else best["val"]  # "val": checkpoints before the rename
        self.best_score, self.best_step, self.best_state = float(score), int(best["step"]), best["state"]
        self.history = list(state["history"])
        self.running, self.count = float(state["running"]["sum"]), int(state["running"]["count"])
        self.elapsed = float(state["elapsed_s"])
        self.checkpoint_step = self.step

    def _sync_for_checkpoint(self) -> list[Any] | None:
        """Data-parallel (every rank calls it): check the ranks agree; every rank's global RNG."""
        if not self.dist.enabled:
            return None
        distributed.sync_buffers(self.model, self.dist)
        extra = {"sampler.perms": self.sampler.perms, "sampler.pos": self.sampler.pos,
                 "sampler.generator": self.sampler.generator.get_state(),
                 "order_generator": self.order_generator.get_state()}
        distributed.check_in_sync(self.model, self.dist, self.step, extra)
        return self.dist.gather_objects(ckpt.global_rng_state())

    def save_checkpoint(self, extra: dict[str, Any] | None = None) -> None:
        if self.run_dir is None and not self.dist.enabled:
            return
        self._check_parameters(self.step)
        rng_ranks = self._sync_for_checkpoint()
        if self.run_dir is None:
            return
        state = {**self.state_dict(), **(extra or {})}
        if rng_ranks is not None:
            state["rng_ranks"] = rng_ranks  # dropout streams differ per rank
        ckpt.save_checkpoint(self.run_dir / ckpt.CHECKPOINT_NAME, state)
        self.checkpoint_step = self.step

    # -- the loop -------------------------------------------------------------------------
    def fit(self, checkpoint_extra: dict[str, Any] | None = None) -> TrainResult:
        """Train from ``self.step`` to ``train.steps``; ``checkpoint_extra`` is stored with every
        checkpoint (the runner passes the resolved config)."""
        cfg = self.cfg.train
        started = time.perf_counter() - self.elapsed
        self.model.train()
        if self.step_model is self.model and (self.balancer is None or not self.balancer.per_task):
            # The per-task path averages per-task gradients over ranks itself (training/balancing.py).
            self.step_model = distributed.wrap(self.model, self.dist)
        if self.best_state is None:
            self.best_state = copy.deepcopy(self.model.state_dict())
        while self.step < cfg.steps:
            step = self.step + 1
            self.running += self.train_step(step)
            self.count += 1
            self.step = step
            if step % cfg.eval_every == 0 or step == cfg.steps:
                record = self.evaluate_all(step, self.running / self.count, time.perf_counter() - started)
                self.history.append(record)
                self.running, self.count = 0.0, 0
                score = selection_score(record, cfg.select_by)
                if score < self.best_score:
                    self.best_score, self.best_step = score, step
                    self.best_state = copy.deepcopy(self.model.state_dict())
            if self.progress is not None:
                self.progress(step, cfg.steps, self.running / max(self.count, 1))
            self.elapsed = time.perf_counter() - started
            signum = self._signum if self.dist.enabled else self.stop.signum if self.stop is not None else None
            every = cfg.checkpoint_every
            if signum is not None or step == cfg.steps or (every and step % every == 0):
                self.save_checkpoint(checkpoint_extra)
            if signum is not None and step < cfg.steps:
                raise RunStopped(step, signum, self.run_dir)
        return TrainResult(self.best_step, self.best_score, self.best_state, self.history,
                           self.optimizer_groups, self.elapsed)
