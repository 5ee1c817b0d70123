"""Gradient aggregation: per-task gradients combined by a TorchJD aggregator (``train.aggregator``).

The per-task gradients of a step form a matrix ``G [T', N]`` over the N trainable parameter
elements (one batched backward pass: ``torch.autograd.grad(..., is_grads_batched=True)``, or T'
passes where an op has no batching rule). Columns are then combined in groups:

- **plain** (``train.structure_aware=false``, TorchJD's ``mtl_backward`` assumption): the
  sharing scheme's weights are one block aggregated over all the step's tasks; everything else
  (encoders, heads, architecture parameters) gets the sum of the per-task gradients, which for
  a task-owned parameter is its own task's gradient.
- **structure-aware** (``train.structure_aware=true``): every element is aggregated over *the
  tasks that use it in this step*, as the model declares them
  (:meth:`~sharewise.model.MultiTaskModel.parameter_users`): elements with the same set of users
  form one block and the aggregator sees only those users' rows. A block with one user gets that
  task's gradient; a block no task uses gets none. So two branches of a tree that share nothing
  are balanced independently, a Gumbel-Matrix component only among the tasks routed through it
  under the sampled allocation, and a single-task copy is never balanced against other tasks.

Scale: TorchJD's aggregators return either an average (Mean, UPGrad, MGDA, IMTL-G, DualProj,
Aligned-MTL, ...) or a sum (Sum, PCGrad, ConFIG, GradDrop) of the rows. Averages are multiplied
by the block's number of users m, so that every aggregator works at the scale of the summed
loss the default trains with (and ``mean`` reproduces it exactly, tested) and learning rates
carry over.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from sharewise.errors import ConfigError

#: TorchJD aggregators whose output is a sum of (transformed) rows rather than an average.
SUMMING = frozenset({"sum", "pcgrad", "config", "graddrop"})


def _key(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def _aggregator_classes(agg: Any) -> dict[str, type]:
    """TorchJD's aggregator classes by normalised name (``upgrad``, ``imtlg``, ...)."""
    return {_key(n): getattr(agg, n) for n in dir(agg) if isinstance(getattr(agg, n), type)
            and issubclass(getattr(agg, n), agg.Aggregator) and n != "Aggregator" and not n.endswith("Aggregator")}


def build_aggregator(name: str, options: dict[str, Any] | None = None) -> Callable[[Tensor], Tensor]:
    """TorchJD aggregator ``name`` (case, '-' and '_' ignored: upgrad, UPGrad, imtl_g) built with
    ``options`` as keyword arguments (e.g. ``{c: 0.5}`` for CAGrad)."""
    try:
        import torchjd.aggregation as agg
    except ImportError as err:
        raise ConfigError(f"train.aggregator={name!r} needs TorchJD: pip install 'sharewise[jd]' "
                          f"(or pip install 'torchjd[quadprog_projector]')") from err
    classes = _aggregator_classes(agg)
    if _key(name) not in classes:
        close = difflib.get_close_matches(_key(name), list(classes), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"train.aggregator: unknown TorchJD aggregator {name!r}.{hint} "
                          f"Valid: {', '.join(sorted(classes))}.")
    cls = classes[_key(name)]
    try:
        return cls(**dict(options or {}))
    except ImportError as err:
        raise ConfigError(f"train.aggregator={name!r}: {err} (sharewise[jd] installs only the quadprog "
                          f"projector that UPGrad, DualProj and most others need)") from err
    except (TypeError, ValueError) as err:
        raise ConfigError(f"train.aggregator={name!r} with train.aggregator_options={options or {}}: {err}. "
                          f"Set the aggregator's constructor arguments in train.aggregator_options.") from err


def task_gradients(losses: Tensor, params: Sequence[nn.Parameter], extra: Tensor | None = None
                   ) -> tuple[Tensor, Tensor | None, list[bool]]:
    """losses [T'] -> (G [T', N] per-task gradients of the flattened params, the gradient [N]
    of ``extra`` (a regulariser) or None, and whether each parameter is in the graph).

    One vmapped backward pass over the identity (``is_grads_batched``); ops without a batching
    rule fall back to one backward pass per task (same numbers)."""
    n = losses.shape[0]
    eye = torch.eye(n, dtype=losses.dtype, device=losses.device)
    keep = extra is not None
    try:
        grads = torch.autograd.grad(losses, params, grad_outputs=eye, is_grads_batched=True,
                                    allow_unused=True, retain_graph=True)
    except RuntimeError:
        rows = [torch.autograd.grad(losses[i], params, allow_unused=True, retain_graph=True) for i in range(n)]
        grads = tuple(None if rows[0][j] is None else torch.stack([r[j] for r in rows]) for j in range(len(params)))
    used = [g is not None for g in grads]
    G = torch.cat([(g if g is not None else p.new_zeros(n, *p.shape)).reshape(n, -1)
                   for g, p in zip(grads, params)], dim=1)  # [T', N]
    R = None
    if keep:
        extra_grads = torch.autograd.grad(extra, params, allow_unused=True)
        R = torch.cat([(g if g is not None else p.new_zeros(p.shape)).reshape(-1) for g, p in zip(extra_grads, params)])
        used = [u or g is not None for u, g in zip(used, extra_grads)]
    return G, R, used


def combine(G: Tensor, users: Tensor | None, aggregator: Callable[[Tensor], Tensor] | None,
            summing: bool, shared: Tensor | None = None) -> Tensor:
    """G [T', N] per-task (weighted) gradients -> the update [N].

    ``users`` [T', N] bool (structure-aware): element j is aggregated over the rows i with
    ``users[i, j]``. Else ``shared`` [N] bool: the shared elements are aggregated over all rows,
    the others summed. ``aggregator`` None sums every block (weighting without aggregation)."""
    if aggregator is None:
        return G.sum(0)
    n = G.shape[0]
    if n == 1:
        return G[0]
    if users is None:
        out = G.sum(0)
        if shared is not None and bool(shared.any()):
            out[shared] = _aggregate(G[:, shared], aggregator, summing)
        return out
    bits = torch.tensor([1 << i for i in range(n)], dtype=torch.long, device=users.device)
    codes = (users.long() * bits.unsqueeze(1)).sum(0)  # [N]: the user set of every element, as bits
    out = (G * users).sum(0)  # one user: its gradient; none: 0
    multi = codes.unique()
    for code in multi.tolist():
        members = [i for i in range(n) if code >> i & 1]
        if len(members) < 2:
            continue
        cols = codes == code
        out[cols] = _aggregate(G[members][:, cols], aggregator, summing)
    return out


def _aggregate(J: Tensor, aggregator: Callable[[Tensor], Tensor], summing: bool) -> Tensor:
    """J [m, n] -> [n] at the summed-loss scale (see the module docstring)."""
    out = aggregator(J)
    return out if summing else out * J.shape[0]
