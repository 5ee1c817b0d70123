"""``torch.optim.Optimizer``'s interface and state format, without ``torch.optim`` (see kernels.py).

:class:`GroupedOptimizer` keeps what the rest of sharewise uses from a torch optimiser:
``param_groups`` (dicts with ``params``, ``lr``, ``weight_decay`` and any other keys, e.g.
``name``), ``add_param_group``, ``state`` (a dict per parameter), ``zero_grad``, and
``state_dict`` / ``load_state_dict`` in torch's format (``{"state": {index: {...}},
"param_groups": [{..., "params": [index, ...]}]}``), so optimiser states in checkpoints written
while sharewise used ``torch.optim`` load unchanged. :class:`PlainOptimizer` is Adam (fused), SGD
(momentum 0.9) or RMSprop over whole parameters, bit-identical to torch's; per-task slices are
:class:`sharewise.training.task_optim.PerTaskOptimizer`.

What is left out, because nothing here uses it: hooks, learning-rate schedulers, sparse or complex
gradients, ``maximize``/``amsgrad`` and other hyperparameters than ``lr`` and ``weight_decay``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from sharewise.training.kernels import BUFFERS, HYPERPARAMETERS, OPTIMIZERS, adam_, rmsprop_, sgd_


class GroupedOptimizer:
    """Parameter groups, per-parameter state and a torch-format state_dict for optimiser ``kind``."""

    def __init__(self, params: Iterable[Any], kind: str, lr: float, weight_decay: float = 0.0) -> None:
        if kind not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {kind!r}")
        self.kind = kind
        self.defaults: dict[str, Any] = {"lr": lr, "weight_decay": weight_decay}
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        groups = list(params)
        if not groups:
            raise ValueError("the optimizer got an empty parameter list")
        for group in groups if isinstance(groups[0], dict) else [{"params": groups}]:
            self.add_param_group(group)

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Adds ``group`` (``params`` and optionally ``lr``, ``weight_decay``, ``name``, ...)."""
        params = group["params"]
        group = {**self.defaults, **group, "params": [params] if isinstance(params, Tensor) else list(params)}
        for p in group["params"]:
            if not isinstance(p, Tensor) or not p.is_leaf:
                raise ValueError(f"an optimizer can only update leaf tensors, got {type(p).__name__}"
                                 f"{'' if not isinstance(p, Tensor) else ' (not a leaf)'}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_() if p.grad.grad_fn is not None else p.grad.requires_grad_(False)
                    p.grad.zero_()

    def state_dict(self) -> dict[str, Any]:
        """torch's format: parameters numbered in group order, state keyed by number. Each group
        also records the kind's fixed hyperparameters (``betas``, ``eps``, ...)."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {**{k: v for k, v in group.items() if k != "params"}, **HYPERPARAMETERS[self.kind]}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)]: value for p, value in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Loads a state from :meth:`state_dict` or from the same kind of ``torch.optim`` optimiser
        over the same groups. Learning rates and weight decays come from the state, as in torch."""
        saved = state_dict["param_groups"]
        if len(saved) != len(self.param_groups) or any(
                len(s["params"]) != len(g["params"]) for s, g in zip(saved, self.param_groups)):
            raise ValueError(f"the optimizer state has groups of {[len(s['params']) for s in saved]} parameters, "
                             f"but this optimizer's groups have {[len(g['params']) for g in self.param_groups]}: "
                             f"it was written for another model or optimizer")
        for group in saved:
            for key, value in HYPERPARAMETERS[self.kind].items():
                got = tuple(group[key]) if isinstance(group.get(key), list) else group.get(key, value)
                if got != value:
                    raise ValueError(f"the optimizer state was written with {key}={got!r}, but sharewise's "
                                     f"{self.kind} uses {key}={value!r}; it cannot continue that state")
        by_index = {i: p for s, g in zip(saved, self.param_groups) for i, p in zip(s["params"], g["params"])}
        self.state = defaultdict(dict)
        for i, values in state_dict["state"].items():
            p = by_index[i]
            self.state[p] = {k: self._place(p, k, v) for k, v in values.items()}
        self.param_groups = [{**{k: v for k, v in s.items() if k not in HYPERPARAMETERS[self.kind]},
                              "params": g["params"]} for s, g in zip(saved, self.param_groups)]

    @staticmethod
    def _place(p: Tensor, key: str, value: Any) -> Any:
        """A loaded state tensor as a copy on ``p``'s device: step counts float32, buffers ``p``'s dtype."""
        if not isinstance(value, Tensor):
            return value
        if key == "step":
            return value.to(dtype=torch.float32, device=p.device, copy=True)
        return value.to(dtype=p.dtype if p.is_floating_point() else value.dtype, device=p.device, copy=True)


class PlainOptimizer(GroupedOptimizer):
    """Adam (fused), SGD (momentum 0.9) or RMSprop over whole parameters; each update is
    bit-identical to ``torch.optim.Adam(fused=True)`` / ``SGD(momentum=0.9)`` / ``RMSprop()``'s.
    A parameter whose gradient is None is skipped, its state untouched."""

    def _state(self, p: Tensor) -> dict[str, Any]:
        state = self.state[p]
        if not state and self.kind != "sgd":  # torch's SGD creates its buffer at the first update
            state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
            for name in BUFFERS[self.kind]:
                state[name] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            states = [self._state(p) for p in params]
            lr, wd = group["lr"], group["weight_decay"]
            if self.kind == "adam":
                adam_(params, grads, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
                      [s["step"] for s in states], lr=lr, weight_decay=wd)
            elif self.kind == "sgd":
                buffers = [s.get("momentum_buffer") for s in states]
                sgd_(params, grads, buffers, lr=lr, weight_decay=wd)
                for s, buf in zip(states, buffers):
                    s["momentum_buffer"] = buf
            else:
                rmsprop_(params, grads, [s["square_avg"] for s in states], [s["step"] for s in states],
                         lr=lr, weight_decay=wd)
