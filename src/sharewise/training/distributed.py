"""Data-parallel training over ``torchrun`` ranks (``torch.nn.parallel.DistributedDataParallel``).

``torchrun --nproc-per-node=N -m sharewise run CONFIG`` starts N copies of the command; torchrun
sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address, and
:func:`init_from_env` joins the process group (``nccl`` when CUDA is available, else ``gloo``)
and places the model on ``cuda:LOCAL_RANK`` or the CPU. Without those variables (a plain
``sharewise run``) nothing here runs a collective and training is exactly the single-process loop.

What makes the ranks one training run:

- Data: every rank draws the *same* global batch of ``train.batch_size * world`` samples per task
  from the same seeded sampler and keeps its own contiguous slice (``StackedTaskSampler(shard=)``),
  so the sampler state is identical on every rank (resume needs one copy) and 2 ranks x B is one
  process x 2B up to the summation order of floats. ``train.batch_size`` stays the per-rank batch.
- Gradients: DDP averages them over ranks. Each task's loss is a mean over the local batch, so
  the average equals the gradient of the global-batch mean (local batches are equal in size). A
  regulariser (e.g. a budget penalty) is the same on every rank and averages to itself.
  ``find_unused_parameters=True`` because a step may leave parameters out of the graph
  (Gumbel-Matrix's inactive components, the alternating mode's other tasks); DDP then leaves a
  parameter unused on every rank with ``grad=None``, as a single process would.
- Architecture parameters and randomness: parameters start equal (same seed; DDP also broadcasts
  rank 0's at wrap time) and stay equal because every rank applies the same averaged gradient.
  Each scheme's own generators (Gumbel noise, the alternating task order) are seeded from the run
  seed, not the rank, and every rank draws from them the same number of times (same forward
  passes, same evaluations), so all ranks sample the same allocation every step.
  :func:`check_in_sync` verifies this at every checkpoint (bitwise, over parameters, buffers and
  generator states) and stops the run if a rank drifted.
- Dropout masks differ per rank: the global torch RNG (which dropout draws from) is reseeded per
  rank after the model is built (:func:`seed_rank`), as independent masks are what a larger batch
  would draw. Checkpoints store every rank's global RNG state, so resume is exact per rank.
- BatchNorm (NDDR) normalises over the local batch; DDP broadcasts rank 0's running statistics at
  every forward (``broadcast_buffers``), so evaluation sees one set of statistics.
- Evaluation: every rank evaluates the same full splits with the same parameters, so all ranks
  reach the same best-checkpoint decision with no communication (and Gumbel-Matrix's
  ``eval_sampling`` draws stay in step). Only rank 0 writes anything (run directory, its lock,
  metrics, checkpoints, plots, reports).
- Agreement per update: one small all-reduce carries the loss (logged as the global mean) and
  whether a rank received SIGINT/SIGTERM, so every rank stops at the same step, rank 0 writes
  the checkpoint, and a non-finite loss on any rank stops every rank before the update.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from sharewise.errors import SharewiseError, TrainingError

T = TypeVar("T")


class DistributedError(SharewiseError):
    """A rank failed before training, or the ranks disagree."""


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job. ``world == 1`` means no process group (no collectives)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # -- collectives (all no-ops for a single process) ------------------------------------------
    def agree(self, loss: float, signum: int | None) -> tuple[float, int | None]:
        """The mean loss over ranks (non-finite if any rank's is) and the stop signal any rank got."""
        if not self.enabled:
            return loss, signum
        flags = [float(signum == s) for s in _STOP_SIGNALS]
        buf = torch.tensor([loss, *flags], dtype=torch.float64, device=self._comm_device)
        dist.all_reduce(buf)
        agreed = None
        for s, count in zip(_STOP_SIGNALS, buf[1:].tolist()):
            if count > 0 and agreed is None:
                agreed = s
        return float(buf[0]) / self.world, agreed

    def gather_objects(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj`` (a list on every rank), or None for a single process."""
        if not self.enabled:
            return None
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def on_main(self, fn: Callable[[], T]) -> T | None:
        """Run ``fn`` on rank 0 only; every rank then raises if it failed there (no rank is left
        waiting in a collective for a rank that gave up)."""
        result, error = None, None
        if self.is_main:
            try:
                result = fn()
            except Exception as err:  # noqa: BLE001 - re-raised below, after telling the other ranks
                error = err
        if self.enabled:
            box = [None if error is None else f"{type(error).__name__}: {error}"]
            dist.broadcast_object_list(box, src=0)
            if box[0] is not None and error is None:
                raise DistributedError(f"rank 0 failed, so rank {self.rank} stops too: {box[0]}")
        if error is not None:
            raise error
        return result

    @property
    def _comm_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
SINGLE = DistContext()


def default_device(local_rank: int = 0) -> torch.device:
    """``cuda:LOCAL_RANK`` when CUDA is available, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def init_from_env(timeout_s: float = 1800.0) -> DistContext:
    """Join the process group torchrun describes in the environment (once per process).

    No ``WORLD_SIZE`` (or 1): a single process, no group, the default device. The backend is
    ``nccl`` when CUDA is available and ``gloo`` otherwise.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world <= 1:
        return DistContext(device=default_device(local_rank))
    device = default_device(local_rank)
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return DistContext(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=local_rank, device=device)


def shutdown(clean: bool = True) -> None:
    """Leave the process group, if this process joined one.

    ``clean`` (the run returned on every rank): first release what still holds the group (the
    DDP wrapper and its reducer, if only a reference cycle keeps them) and meet the other ranks at
    a barrier, so that no rank closes its connections while a peer still reads from them. Without
    the barrier a gloo rank was once aborted at exit in CI after a successful run ("terminate
    called without an active exception", SIGABRT, so torchrun failed the whole run). After an
    error there is no barrier: a failed peer may never arrive.
    """
    if not dist.is_initialized():
        return
    if clean:
        gc.collect()
        try:
            dist.barrier()
        except (RuntimeError, dist.DistError) as err:  # a peer already gone: say so, then leave anyway
            print(f"sharewise: rank {dist.get_rank()} finished, but another rank had already left the process "
                  f"group ({type(err).__name__}: {err}); this rank's results are complete", file=sys.stderr)
    dist.destroy_process_group()


def seed_rank(seed: int, ctx: DistContext) -> None:
    """Give each rank > 0 its own global RNG stream (dropout masks); rank 0 keeps the seed's."""
    if ctx.rank > 0:
        torch.manual_seed(seed + 1_000_003 * ctx.rank)


def wrap(model: nn.Module, ctx: DistContext) -> nn.Module:
    """The module the training step calls: the model itself, or its DDP wrapper."""
    if not ctx.enabled:
        return model
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=True)


def _states(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    from sharewise.training.checkpoint import module_states

    yield from model.state_dict().items()
    for key, state in module_states(model).items():
        if isinstance(state, torch.Tensor):
            yield key, state


def fingerprint(model: nn.Module, extra: dict[str, torch.Tensor] | None = None) -> list[tuple[str, str]]:
    """(name, digest) of every parameter, buffer and generator state (and ``extra``), bitwise."""
    import hashlib

    items = list(_states(model)) + list((extra or {}).items())
    return [(name, hashlib.sha1(t.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest())
            for name, t in items]


def sync_buffers(model: nn.Module, ctx: DistContext) -> None:
    """Copy rank 0's buffers to every rank (BatchNorm running statistics change locally in every
    training forward; DDP broadcasts them only at the start of the next one)."""
    if ctx.enabled:
        for buf in model.buffers():
            dist.broadcast(buf.data, src=0)


def check_in_sync(model: nn.Module, ctx: DistContext, step: int,
                  extra: dict[str, torch.Tensor] | None = None) -> None:
    """Raise on every rank if any rank's parameters, buffers, generator states or ``extra`` tensors
    differ from rank 0's (call after :func:`sync_buffers`)."""
    prints = ctx.gather_objects(fingerprint(model, extra))
    if prints is None:
        return
    ref = dict(prints[0])
    bad = sorted({(r, n) for r, p in enumerate(prints[1:], 1) for n, d in p if ref.get(n) != d})
    if bad:
        names = sorted({n for _, n in bad})
        raise TrainingError(
            f"at step {step} the ranks disagree on {', '.join(names[:5])}{' ...' if len(names) > 5 else ''} "
            f"(ranks {sorted({r for r, _ in bad})} differ from rank 0): something in the model draws from "
            f"a per-rank random source or changes outside the training step; the checkpoint was not written"
        )
