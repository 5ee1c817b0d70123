"""Binary Gumbel-Softmax sampling and the temperature schedule of Gumbel-Matrix routing.

Maziarz et al., Sec. III-B: to sample a connection z ~ Bernoulli(p) with pi = [p, 1 - p], add
independent Gumbel noise to both log-probabilities, take the argmax in the forward pass and
back-propagate through the tempered softmax (straight-through Gumbel-Softmax, Jang et al. 2017).
The noise formula and the temperature schedule are the authors' public code's (not in the paper).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sharewise.errors import ConfigError

_EPS = 1e-20


class TemperatureSchedule:
    """``tau(step) = max(floor, initial / sqrt(step + 1))`` (the authors' code: 50 and 0.5).

    ``step`` counts training updates as the trainer counts them; in the paper's alternating mode
    one step is one single-task update, so the floor is reached after ``(initial/floor)^2``
    (= 10,000 by default) single-task updates.
    """

    def __init__(self, initial: float = 50.0, floor: float = 0.5) -> None:
        if not (initial > 0 and floor > 0):
            raise ConfigError(
                f"temperature initial and floor must be > 0, but got initial={initial}, floor={floor}"
            )
        self.initial, self.floor = float(initial), float(floor)

    def __call__(self, step: int) -> float:
        return max(self.floor, self.initial / math.sqrt(step + 1))

    def __repr__(self) -> str:
        return f"TemperatureSchedule(initial={self.initial}, floor={self.floor})"


def allocation_logits_init(shape: tuple[int, ...], p_init: float) -> Tensor:
    """``[..., 2]`` logits log([p_init, 1 - p_init]) (Sec. III-A, constant initial probability)."""
    if not 0.0 < p_init < 1.0:
        raise ConfigError(f"p_init must be in (0, 1), but got {p_init}")
    base = torch.tensor([math.log(p_init), math.log1p(-p_init)])
    return base.expand(*shape, 2).clone()


def gumbel_noise(shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
    """g = -log(-log(u + 1e-20) + 1e-20), u ~ U(0, 1), independent per entry, on the generator's device."""
    u = torch.rand(shape, generator=generator, device=generator.device)
    return u.add_(_EPS).log_().neg_().add_(_EPS).log_().neg_()  # the formula's ops in order, in place


def straight_through_sample(logits: Tensor, noise: Tensor | None, tau: float) -> Tensor:
    """z in {0, 1} of shape ``logits.shape[:-1]``; forward exactly binary, gradient of the soft sample.

    logits ``[..., 2]`` (entry 0 = "connected"); ``noise`` of the same shape (None: no noise).
    ``z = hard + (soft - stopgrad(soft))``; keep the "on" entry. The bracket is exactly 0.0 in
    floating point (x - x), so the forward value is exactly ``hard``; the authors' order
    ``hard + soft - stopgrad(soft)`` can round 1 to 0.99999994. Ties (v_0 == v_1) count as
    "on", matching the maximum-likelihood rule p >= 0.5.
    """
    v = logits if noise is None else logits + noise
    soft = torch.softmax(v / tau, dim=-1)[..., 0]
    hard = (v[..., 0] >= v[..., 1]).to(soft.dtype)
    return hard + (soft - soft.detach())


def ml_allocation(logits: Tensor) -> Tensor:
    """The maximum-likelihood allocation: 1 where p = softmax(logits)[..., 0] >= 0.5 (Sec. III-C)."""
    return (logits[..., 0] >= logits[..., 1]).to(logits.dtype)


def connection_probability(logits: Tensor) -> Tensor:
    """p = softmax(logits)[..., 0]: ``[..., 2] -> [...]``."""
    return torch.softmax(logits, dim=-1)[..., 0]


def keep_one_active(z: Tensor, logits: Tensor) -> Tensor:
    """``z [T', C]`` with, in every row that is all zeros, the most probable component turned on.

    The paper's rule lets a task's allocation in a layer be empty (its output there is then
    constant); this optional guard keeps at least one component per task and layer. The forced
    entry keeps the soft sample's gradient (straight-through) where ``z`` has one.
    """
    empty = z.detach().sum(dim=-1, keepdim=True) == 0  # [T', 1]
    best = torch.nn.functional.one_hot((logits[..., 0] - logits[..., 1]).argmax(dim=-1), z.shape[-1]).bool()
    force = empty & best  # [T', C]
    return torch.where(force, z - z.detach() + 1.0, z)


def empty_allocations(alloc: list[Tensor]) -> list[tuple[int, int]]:
    """``(task, layer)`` pairs whose allocation row is all zeros (per layer ``[T, C_l]``)."""
    return [(t, l) for l, a in enumerate(alloc) for t in (a.sum(dim=-1) == 0).nonzero().flatten().tolist()]
