"""Loss weighting: how much each task's loss counts in an update (``train.weighting``).

A weighting turns the tasks' current losses into multipliers ``w [T']`` of the tasks' losses
(the model's gradient is ``sum_t w_t grad L_t``); the multipliers are constants for the model. A
weighting with parameters of its own (uncertainty's log-variances, GradNorm's weights) sets
their gradients itself (:meth:`LossWeighting.own_backward` / :meth:`LossWeighting.observe_gradients`);
the trainer puts those parameters in their own optimiser group, ``loss_weights``.

Every weighting keeps one entry per task of the model and updates only the entries of the tasks
in the step, so the paper's alternating mode (one task per update) works: a window, an initial
loss or a gradient norm is that task's latest.

- ``equal``: w = 1 (the default; the trainer then skips this module entirely).
- ``uncertainty``: Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty to Weigh
  Losses", CVPR 2018, Eq. 7 (regression) and Eq. 10 (classification).
- ``dwa``: Liu, Johns & Davison, "End-to-End Multi-Task Learning with Attention", CVPR 2019, Eq. 7.
- ``gradnorm``: Chen et al., "GradNorm: Gradient Normalization for Adaptive Loss Balancing",
  ICML 2018, Sec. 3.2, Eq. 1-2 and Algorithm 1.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from sharewise.errors import ConfigError


class LossWeighting(nn.Module):
    """Multipliers of the task losses; see the module docstring for the contract."""

    #: GradNorm needs every task's gradient norm on the shared weights, i.e. per-task gradients.
    needs_task_gradients = False

    def __init__(self, n_tasks: int) -> None:
        super().__init__()
        self.n_tasks = n_tasks

    def weights(self, losses: Tensor, tasks: Sequence[int]) -> Tensor:
        """losses [T'] (detached; the mean over data-parallel ranks) -> multipliers [T']."""
        return torch.ones_like(losses)

    def own_backward(self, losses: Tensor, tasks: Sequence[int]) -> None:
        """Set the gradients of this weighting's own parameters (if any)."""

    def observe_gradients(self, norms: Tensor, losses: Tensor, tasks: Sequence[int]) -> None:
        """norms [T']: ||grad_W L_t|| on the shared weights W (only if ``needs_task_gradients``)."""

    def observe(self, losses: Tensor, tasks: Sequence[int]) -> None:
        """After the update: remember this step's losses."""

    def step_metrics(self) -> dict[str, float]:
        """The current multipliers, logged with every evaluation."""
        return {}

    def task_stacked_parameters(self) -> list[nn.Parameter]:
        """Own parameters ``[T]`` whose entry t is task t's alone: the optimiser moves entry t
        only in updates of task t (alternating mode), with its own state."""
        return []


class Uncertainty(LossWeighting):
    """Homoscedastic uncertainty (Kendall et al. 2018). Each task has a learned s_t = log sigma_t^2;
    the objective is ``sum_t c_t exp(-s_t) L_t + s_t / 2`` with c_t = 1/2 for regression (Eq. 7:
    1/(2 sigma^2) L + log sigma) and c_t = 1 for classification (Eq. 10: 1/sigma^2 L + log sigma).
    At its stationary point exp(s_t) = 2 c_t L_t, so the effective weight c_t exp(-s_t) tends to
    1 / (2 L_t): with mean squared error that is the inverse noise variance (tested)."""

    def __init__(self, kinds: Sequence[str]) -> None:
        super().__init__(len(kinds))
        self.log_variance = nn.Parameter(torch.zeros(len(kinds)))  # s_t = log sigma_t^2
        self.register_buffer("factor", torch.tensor([0.5 if k == "regression" else 1.0 for k in kinds]))

    def _index(self, tasks: Sequence[int]) -> Tensor:
        return torch.tensor(list(tasks), dtype=torch.long, device=self.log_variance.device)

    def weights(self, losses: Tensor, tasks: Sequence[int]) -> Tensor:
        idx = self._index(tasks)
        return (self.factor[idx] * torch.exp(-self.log_variance[idx])).detach()

    def own_backward(self, losses: Tensor, tasks: Sequence[int]) -> None:
        idx = self._index(tasks)
        s = self.log_variance[idx]
        objective = (self.factor[idx] * torch.exp(-s) * losses + 0.5 * s).sum()
        (grad,) = torch.autograd.grad(objective, self.log_variance)
        self.log_variance.grad = grad if self.log_variance.grad is None else self.log_variance.grad + grad

    def task_stacked_parameters(self) -> list[nn.Parameter]:
        return [self.log_variance]  # s_t is task t's; GradNorm's weights are renormalised together

    def step_metrics(self) -> dict[str, float]:
        w = (self.factor * torch.exp(-self.log_variance)).detach().tolist()
        return {f"weight/t{t}": v for t, v in enumerate(w)}


class DynamicWeightAverage(LossWeighting):
    """DWA (Liu et al. 2019, Eq. 7): w_t = K exp(r_t / T) / sum_k exp(r_k / T) with the loss
    descent rate r_t = L_t(e-1) / L_t(e-2) over the last two *windows* (the paper's epochs;
    ``window`` updates of task t each) and K the number of tasks; w = 1 until every task has
    two complete windows. ``temperature`` T = 2 as in the paper."""

    def __init__(self, n_tasks: int, *, temperature: float = 2.0, window: int = 100) -> None:
        super().__init__(n_tasks)
        if temperature <= 0:
            raise ConfigError(f"train.weighting_options.temperature must be > 0, got {temperature}")
        if window < 1:
            raise ConfigError(f"train.weighting_options.window must be >= 1 update, got {window}")
        self.temperature, self.window = float(temperature), int(window)
        for name in ("window_sum", "window_count", "last", "before_last", "windows_done"):
            self.register_buffer(name, torch.zeros(n_tasks, dtype=torch.float64))

    def all_weights(self) -> Tensor:
        """[T] the current multipliers of all tasks."""
        if bool((self.windows_done < 2).any()):
            return torch.ones(self.n_tasks, dtype=torch.float64, device=self.last.device)
        rate = self.last / self.before_last  # [T]
        return self.n_tasks * torch.softmax(rate / self.temperature, dim=0)

    def weights(self, losses: Tensor, tasks: Sequence[int]) -> Tensor:
        return self.all_weights()[list(tasks)].to(losses.dtype)

    def observe(self, losses: Tensor, tasks: Sequence[int]) -> None:
        idx = torch.tensor(list(tasks), dtype=torch.long, device=self.last.device)
        self.window_sum.index_add_(0, idx, losses.detach().to(torch.float64))
        self.window_count.index_add_(0, idx, torch.ones_like(idx, dtype=torch.float64))
        full = self.window_count >= self.window  # [T]
        if bool(full.any()):
            mean = self.window_sum / self.window_count.clamp(min=1)
            self.before_last.copy_(torch.where(full, self.last, self.before_last))
            self.last.copy_(torch.where(full, mean, self.last))
            self.windows_done.add_(full.to(torch.float64))
            self.window_sum.masked_fill_(full, 0.0)
            self.window_count.masked_fill_(full, 0.0)

    def step_metrics(self) -> dict[str, float]:
        return {f"weight/t{t}": v for t, v in enumerate(self.all_weights().tolist())}


class GradNorm(LossWeighting):
    """GradNorm (Chen et al. 2018). Learned weights w_t (init 1, their own optimiser group) are
    moved to equalise the weighted gradient norms G_t = w_t ||grad_W L_t|| on the shared weights
    W, pulled toward ``mean(G) * r_t^alpha`` where r_t = L~_t / mean(L~), L~_t = L_t / L_t(0):
    the gradient of Eq. 2's L_grad = sum_t |G_t - target_t| with respect to w_t, the target held
    constant (Sec. 3.2), is sign(G_t - target_t) ||grad_W L_t||. After each update the weights
    are renormalised to sum to the number of tasks (Algorithm 1). W here is every weight of the
    sharing scheme (the paper uses the last shared layer to save compute; sharewise computes the
    per-task gradients of all shared weights anyway, so the choice costs nothing more)."""

    needs_task_gradients = True

    def __init__(self, n_tasks: int, *, alpha: float = 1.5) -> None:
        super().__init__(n_tasks)
        self.alpha = float(alpha)
        self.weight = nn.Parameter(torch.ones(n_tasks))
        self.register_buffer("initial_loss", torch.zeros(n_tasks))  # L_t(0), 0 = not seen yet
        self.register_buffer("latest_loss", torch.zeros(n_tasks))
        self.register_buffer("latest_norm", torch.zeros(n_tasks))  # ||grad_W L_t||

    @torch.no_grad()
    def renormalise(self) -> None:
        """w > 0 and sum_t w_t = T (Algorithm 1, after every update)."""
        self.weight.clamp_(min=1e-6)
        self.weight.mul_(self.n_tasks / self.weight.sum())

    def weights(self, losses: Tensor, tasks: Sequence[int]) -> Tensor:
        self.renormalise()
        return self.weight.detach()[list(tasks)].to(losses.dtype)

    def observe_gradients(self, norms: Tensor, losses: Tensor, tasks: Sequence[int]) -> None:
        idx = torch.tensor(list(tasks), dtype=torch.long, device=self.weight.device)
        losses = losses.detach().to(self.latest_loss.dtype)
        first = self.initial_loss[idx] == 0
        self.initial_loss[idx] = torch.where(first, losses, self.initial_loss[idx])
        self.latest_loss[idx] = losses
        self.latest_norm[idx] = norms.detach().to(self.latest_norm.dtype)
        seen = self.initial_loss > 0  # tasks with a known L(0); the others have no norm yet
        g = self.latest_norm
        G = self.weight.detach() * g  # [T]
        ratio = torch.where(seen, self.latest_loss / self.initial_loss.clamp(min=1e-12), torch.zeros_like(g))
        n_seen = seen.sum().clamp(min=1)
        rate = ratio / (ratio.sum() / n_seen).clamp(min=1e-12)  # r_t
        target = (G * seen).sum() / n_seen * rate.pow(self.alpha)  # constant (Sec. 3.2)
        grad = torch.where(seen, torch.sign(G - target) * g, torch.zeros_like(g))
        self.weight.grad = grad if self.weight.grad is None else self.weight.grad + grad

    def step_metrics(self) -> dict[str, float]:
        return {f"weight/t{t}": v for t, v in enumerate(self.weight.detach().tolist())}


def _equal(kinds: Sequence[str]) -> LossWeighting:
    return LossWeighting(len(kinds))


def _uncertainty(kinds: Sequence[str]) -> LossWeighting:
    return Uncertainty(kinds)


def _dwa(kinds: Sequence[str], *, temperature: float = 2.0, window: int = 100) -> LossWeighting:
    return DynamicWeightAverage(len(kinds), temperature=temperature, window=window)


def _gradnorm(kinds: Sequence[str], *, alpha: float = 1.5) -> LossWeighting:
    return GradNorm(len(kinds), alpha=alpha)


WEIGHTINGS: dict[str, Callable[..., LossWeighting]] = {
    "equal": _equal, "uncertainty": _uncertainty, "dwa": _dwa, "gradnorm": _gradnorm,
}


def build_weighting(name: str, kinds: Sequence[str], options: dict[str, Any] | None = None) -> LossWeighting:
    """``train.weighting`` with ``train.weighting_options`` for tasks of the given kinds."""
    if name not in WEIGHTINGS:
        close = difflib.get_close_matches(name, list(WEIGHTINGS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"train.weighting: unknown weighting {name!r}.{hint} Valid: {', '.join(WEIGHTINGS)}.")
    builder, options = WEIGHTINGS[name], dict(options or {})
    valid = [k for k in inspect.signature(builder).parameters if k != "kinds"]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(f"train.weighting_options: weighting {name!r} does not take {unknown}; "
                          f"valid options: {valid or 'none'}.")
    return builder(kinds, **options)
