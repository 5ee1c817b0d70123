"""Modular layers: C interchangeable components whose outputs are mixed per task by a 0/1 allocation.

A *modular layer* (Maziarz et al., Sec. III, Fig. 2) holds C components with the same input and
output shape (convs, conv pairs, pooling, identity, dense stacks). Task t uses the components
with z[t, c] = 1 and gets their mean,

    y_t = sum_c w[t, c] * f_c(x_t),   w[t, c] = z[t, c] / max(sum_c' z[t, c'], 1),

so an all-zero allocation gives a zero output and the gradient flows through the normaliser.
Every component is evaluated for every task: a straight-through allocation needs f_c(x_t) for
the gradient of z[t, c] even when z[t, c] = 0.

Execution (``ModularNetwork.forward``):

- **stacked**: each component runs once on the stacked batch ``[T'*B, *f]`` (for fused banks
  all C components are one GEMM / one convolution) and the mixing is one batched product. A
  bank with ``mixes_tasks`` (ConvBank with ``impl='unfold'``) does both itself in one op
  (``forward_mixed(x, w)``, any memory layout in and out; see ``components/conv_mix.py``).
- **per_task** (``task_chunk`` tasks at a time, 1 by default): the whole network runs on one
  chunk of tasks at a time; on a CPU this keeps large conv activations in cache.
- **inactive_no_grad** (off by default): where z[t, c] = 0, f_c(x_t) enters the loss only as a
  *value* (multiplied by w[t, c] = 0, it contributes zero gradient to the component's
  parameters and to x_t; the logit's gradient needs only the value). Computing it under
  ``torch.no_grad`` is therefore exact (tested) and skips its backward. With stacked tasks a
  component can be inactive for some tasks and active for others: its batch is split into the
  active rows (tracked) and the inactive rows (untracked), two calls instead of one; when every
  z is 1 the fused path runs. Measured on this project's shared 2-core CPU it was *slower* in
  every configuration (4-MNISTs stacked 16.7 vs 9.0 ms, per task 17.0 vs 14.9 ms; Omniglot-20
  at 12x12, p_init 0.97: stacked 17.1 vs 14.3 s, per task 42 vs 21 s; noisy, loaded machine).
  Fused banks lose their single call; for the rest our unverified guess is oneDNN primitive
  churn (split batches change shape every step; no-grad convs may take other primitives).
  Hence off by default; the issue's 1.4x gain was measured elsewhere.
  This needs per-sample components (no BatchNorm: the split changes the batch).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from sharewise.components.layer_bank import LayerBank
from sharewise.errors import ConfigError, ShapeError

EXECUTIONS = ("stacked", "per_task", "auto")
# 'auto' runs per_task when one chunk's stacked component outputs would exceed this many
# elements (C * T' * B * prod(f') of the largest layer). Measured on a shared 2-core CPU
# (benchmarks/bench_gumbel_matrix.py): 4-MNISTs (5.9e5) stacked 9 ms vs 15 ms per task; reduced
# Omniglot-20 at 12x12 (3.9e6) stacked 14.3 s vs 20.7 s per task. The issue reports per-task
# twice as fast for the full 105x105 Omniglot network (~1.1e9); the cut-off between is a guess.
AUTO_STACKED_MAX_ELEMENTS = 4_000_000


class ModularLayer(nn.Module):
    """C components (a :class:`LayerBank`) mixed per task by an allocation ``z [T', C]``.

    The components are probed with a zero input of shape ``[2, *in_shape]``; different output
    shapes raise :class:`ShapeError` naming the components and their shapes.
    """

    def __init__(self, bank: LayerBank, in_shape: Sequence[int], names: Sequence[str] | None = None) -> None:
        super().__init__()
        self.bank = bank
        self.n_components = bank.n_layers
        self.names = list(names) if names is not None else [f"c{c}" for c in range(self.n_components)]
        if len(self.names) != self.n_components:
            raise ConfigError(f"got {len(self.names)} component names for {self.n_components} components")
        self.in_shape = tuple(int(s) for s in in_shape)
        self.out_shape = self._probe()

    def _probe(self) -> tuple[int, ...]:
        probe = torch.zeros(2, *self.in_shape)
        shapes: list[tuple[int, ...] | str] = []
        was_training = self.bank.training
        self.bank.eval()  # the probe must not move a component's batch-norm statistics
        with torch.no_grad():
            for c in range(self.n_components):
                try:
                    shapes.append(tuple(self.bank.forward_one(c, probe).shape[1:]))
                except (RuntimeError, ValueError, IndexError, TypeError) as err:
                    shapes.append(f"error: {str(err).splitlines()[0]}")
        self.bank.train(was_training)
        if len(set(shapes)) > 1 or isinstance(shapes[0], str):
            listing = ", ".join(f"{n}: {list(s) if isinstance(s, tuple) else s}"
                                for n, s in zip(self.names, shapes))
            raise ShapeError(
                f"the components of a modular layer must map input {list(self.in_shape)} to one "
                f"output shape, but got {listing}. Give every component the same output shape "
                f"(e.g. a strided 1x1 conv as the identity of a strided layer)."
            )
        return shapes[0]  # type: ignore[return-value]

    def forward(self, x: Tensor, z: Tensor, *, inactive_no_grad: bool = False,
                weights: Tensor | None = None, post: nn.Module | None = None) -> Tensor:
        """x ``[T', B, *f]``, z ``[T', C]`` in {0, 1} -> ``[T', B, *f']``.

        ``inactive_no_grad``: see the module docstring (exact, off by default: slower here).
        ``weights``: ``mix_weights(z)`` computed by the caller (who then carries z's gradient
        in it; z's own gradient is not used), e.g. every layer's at once by a scheme.
        ``post``: a shared module applied to the mixed output (the network's post module; the
        output shape is then post's). A fused bank pools inside its own op where ``post`` is
        plain p x p average pooling (``fold_size``), else ``post`` runs after the layer.
        """
        self.check_allocation(x.shape[0], z)
        split = inactive_no_grad and torch.is_grad_enabled()
        w = mix_weights(z) if weights is None else weights
        if not split and getattr(self.bank, "mixes_tasks", False):  # one fused op, any memory layout
            fold = getattr(post, "fold_size", None)
            if fold is not None:
                return self.bank.forward_mixed(x, w, pool=fold)
            return apply_shared(post, self.bank.forward_mixed(x, w))
        return apply_shared(post, self._mixed(x, z, w, split))

    def check_allocation(self, n_tasks: int, z: Tensor) -> None:
        if z.shape != (n_tasks, self.n_components):
            raise ShapeError(f"expected an allocation of shape {[n_tasks, self.n_components]}, but got {list(z.shape)}")

    def _mixed(self, x: Tensor, z: Tensor, w: Tensor, split: bool) -> Tensor:
        t, b = x.shape[:2]
        flat = x.reshape(t * b, *x.shape[2:])  # [T'*B, *f]
        active = z.detach() > 0.5  # [T', C]
        if not split or bool(active.all()):
            outs = self.bank.forward_all(flat)  # [C, T'*B, *f']
            outs = outs.reshape(self.n_components, t, -1)  # [C, T', B*F']
        else:
            outs = torch.stack([self._one(c, x, flat, active[:, c]) for c in range(self.n_components)])
        return mix(outs, w=w).view(t, b, *self.out_shape)

    def _one(self, c: int, x: Tensor, flat: Tensor, active: Tensor) -> Tensor:
        """Component c on every task, tracked only where active: ``[T', B*F']``."""
        t, b = x.shape[:2]
        if bool(active.all()):
            return self.bank.forward_one(c, flat).reshape(t, -1)
        if not bool(active.any()):
            with torch.no_grad():
                return self.bank.forward_one(c, flat).reshape(t, -1)
        on, off = active.nonzero().squeeze(1), (~active).nonzero().squeeze(1)
        y_on = self.bank.forward_one(c, x.index_select(0, on).reshape(-1, *x.shape[2:]))
        with torch.no_grad():
            y_off = self.bank.forward_one(c, x.index_select(0, off).reshape(-1, *x.shape[2:]))
        y = torch.cat([y_on.reshape(on.numel(), -1), y_off.reshape(off.numel(), -1)])  # [T', B*F'] permuted
        return y.index_select(0, torch.argsort(torch.cat([on, off])))


def apply_shared(module: nn.Module | None, x: Tensor) -> Tensor:
    """A shared module on stacked tasks ``[T', B, ...]`` (None: x itself); a module with
    ``stacked_tasks`` takes them as they are, any other sees ``[T'*B, ...]``."""
    if module is None or type(module) is nn.Identity:
        return x
    if getattr(module, "stacked_tasks", False):  # takes [T', B, ...] in any memory layout
        return module(x)
    t, b = x.shape[:2]
    y = module(x.reshape(t * b, *x.shape[2:]))  # [T'*B, *f]
    return y.view(t, b, *y.shape[1:])


def mix(outs: Tensor, z: Tensor | None = None, *, w: Tensor | None = None) -> Tensor:
    """``outs [C, T', M]``, ``z [T', C]`` -> ``[T', M]``: the mean of the active components.

    w = z / max(sum_c z, 1); ``clamp`` passes the gradient at sum = 1 (as TF's ``maximum``).
    Pass ``w`` instead of ``z`` where the caller has computed it.
    """
    if w is None:
        w = mix_weights(z)  # [T', C]
    return torch.bmm(w.unsqueeze(1), outs.transpose(0, 1)).squeeze(1)  # [T', 1, C] @ [T', C, M]


def mix_weights(z: Tensor) -> Tensor:
    """``z [T', C]`` -> w = z / max(sum_c z, 1); ``clamp`` passes the gradient at sum = 1 (as TF's ``maximum``)."""
    return z / z.sum(dim=1, keepdim=True).clamp(min=1.0)


class ModularNetwork(nn.Module):
    """``stem -> (modular layer -> shared post module) x L``; all but the modular layers are shared.

    ``post[l]`` (``None`` for nothing) runs after layer l on every task's mixed output (shared
    GroupNorm + ReLU in the Omniglot network, shared average pooling in the 4-MNISTs network:
    pooling is linear, so pooling the mean equals the mean of pooled components).
    """

    def __init__(self, layers: Sequence[ModularLayer], in_shape: Sequence[int],
                 post: Sequence[nn.Module | None] | None = None, stem: nn.Module | None = None) -> None:
        super().__init__()
        if not layers:
            raise ConfigError("a modular network needs at least one modular layer")
        post = list(post) if post is not None else [None] * len(layers)
        if len(post) != len(layers):
            raise ConfigError(f"got {len(post)} post modules for {len(layers)} modular layers")
        self.in_shape = tuple(int(s) for s in in_shape)
        self.stem = stem if stem is not None else nn.Identity()
        self.layers = nn.ModuleList(layers)
        self.post = nn.ModuleList([p if p is not None else nn.Identity() for p in post])
        with torch.no_grad():
            self.out_shape = tuple(self._shared(self.post[-1], torch.zeros(1, 2, *layers[-1].out_shape)).shape[2:])

    @property
    def components_per_layer(self) -> list[int]:
        return [layer.n_components for layer in self.layers]

    _shared = staticmethod(apply_shared)

    def forward(self, x: Tensor, allocation: Sequence[Tensor], *, execution: str = "stacked",
                task_chunk: int = 1, inactive_no_grad: bool = False,
                weights: Sequence[Tensor] | None = None) -> Tensor:
        """x ``[T', B, *f]``, allocation: per layer ``[T', C_l]`` -> ``[T', B, *f_out]``.

        ``weights``: per layer ``mix_weights(allocation[l])``, computed by the caller (a scheme
        computes all layers' in one autograd node, see ``sharing/_sampled_mix.py``); they then
        carry the allocation's gradient."""
        if len(allocation) != len(self.layers) or (weights is not None and len(weights) != len(self.layers)):
            raise ShapeError(f"expected {len(self.layers)} allocation matrices, but got {len(allocation)}")
        mode = self.resolve_execution(execution, x.shape[0], x.shape[1])
        t = x.shape[0]
        if mode == "stacked" or task_chunk >= t:
            return self._run(x, allocation, inactive_no_grad, weights)
        cut = lambda zs, i: None if zs is None else [z[i:i + task_chunk] for z in zs]  # noqa: E731
        chunks = [self._run(x[i:i + task_chunk], cut(allocation, i), inactive_no_grad, cut(weights, i))
                  for i in range(0, t, task_chunk)]
        return torch.cat(chunks)

    def _run(self, x: Tensor, allocation: Sequence[Tensor], inactive_no_grad: bool,
             weights: Sequence[Tensor] | None = None) -> Tensor:
        y = self._shared(self.stem, x)
        if not (inactive_no_grad and torch.is_grad_enabled()):
            chained = self._chain(y, allocation, weights)
            if chained is not None:
                return chained
        for l, (layer, post, z) in enumerate(zip(self.layers, self.post, allocation)):
            w = None if weights is None else weights[l]
            y = layer(y, z, inactive_no_grad=inactive_no_grad, weights=w, post=post)
        return y

    def _chain(self, x: Tensor, allocation: Sequence[Tensor], weights: Sequence[Tensor] | None) -> Tensor | None:
        """Every layer in one op, where the banks can run as a chain (``forward_chain``: the
        4-MNISTs fused conv banks) and every post module is nothing or foldable pooling; else None.
        The same values as layer by layer, with fewer small ops (see ``conv_mix.conv_mix_chain``)."""
        banks = [layer.bank for layer in self.layers]
        chain = getattr(type(banks[0]), "forward_chain", None)
        if chain is None or any(type(b) is not type(banks[0]) or not getattr(b, "mixes_tasks", False) for b in banks):
            return None
        pools = []
        for post in self.post:
            pool = 1 if type(post) is nn.Identity else getattr(post, "fold_size", None)
            if pool is None:
                return None
            pools.append(pool)
        ws = []
        for l, (layer, z) in enumerate(zip(self.layers, allocation)):
            layer.check_allocation(x.shape[0], z)
            ws.append(mix_weights(z) if weights is None else weights[l])
        return chain(x, banks, ws, pools)

    def resolve_execution(self, execution: str, n_tasks: int, batch: int) -> str:
        """'stacked' or 'per_task'; 'auto' by the size heuristic ``AUTO_STACKED_MAX_ELEMENTS``."""
        if execution not in EXECUTIONS:
            raise ConfigError(f"execution must be one of {list(EXECUTIONS)}, but got {execution!r}")
        if execution != "auto":
            return execution
        biggest = max(layer.n_components * _numel(layer.out_shape) for layer in self.layers)
        return "stacked" if n_tasks * batch * biggest <= AUTO_STACKED_MAX_ELEMENTS else "per_task"


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def loop_forward(net: ModularNetwork, x: Tensor, allocation: Sequence[Tensor]) -> Tensor:
    """Reference written from the paper: for each task, for each layer, for each component.

    y_t <- post(sum_c z[t, c] f_c(y_t) / max(sum_c z[t, c], 1)). Slow; for tests and benchmarks.
    """
    outs = []
    for t in range(x.shape[0]):
        y = net.stem(x[t])  # [B, *f]
        for layer, post, z in zip(net.layers, net.post, allocation):
            denom = z[t].sum().clamp(min=1.0)
            acc = 0.0
            for c in range(layer.n_components):
                acc = acc + z[t, c] * layer.bank.forward_one(c, y) / denom
            y = post(acc)
        outs.append(y)
    return torch.stack(outs)  # [T', B, *f_out]
