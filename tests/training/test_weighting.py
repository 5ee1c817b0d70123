"""Loss weightings against known answers (Kendall et al. 2018, Liu et al. 2019, Chen et al. 2018)."""

from __future__ import annotations

import math

import pytest
import torch

from sharewise.errors import ConfigError
from sharewise.training.weighting import DynamicWeightAverage, GradNorm, Uncertainty, build_weighting


def test_uncertainty_weights_tend_to_the_inverse_noise_variances() -> None:
    """Two regression tasks y_t = x.a + sigma_t * eps with sigma = 0.5 and 2: at the optimum
    L_t = sigma_t^2, so the learned weights 1/(2 sigma_t^2) stand in the ratio 16:1."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4000, 3, generator=gen)
    a = torch.tensor([1.0, -2.0, 0.5])
    sigma = torch.tensor([0.5, 2.0])
    y = (x @ a).unsqueeze(1) + sigma * torch.randn(4000, 2, generator=gen)  # [N, 2]
    model = torch.nn.Linear(3, 2)
    weighting = Uncertainty(["regression", "regression"])
    opt = torch.optim.Adam([{"params": model.parameters()}, {"params": weighting.parameters()}], lr=0.05)
    for step in range(300):
        idx = torch.randint(0, 4000, (256,), generator=gen)
        losses = ((model(x[idx]) - y[idx]) ** 2).mean(0)  # [2]
        opt.zero_grad()
        w = weighting.weights(losses.detach(), [0, 1])
        (w * losses).sum().backward()
        weighting.own_backward(losses.detach(), [0, 1])
        opt.step()
    w = weighting.weights(torch.zeros(2), [0, 1])
    assert w[0] / w[1] == pytest.approx(16.0, rel=0.15)
    assert w.tolist() == pytest.approx((1 / (2 * sigma**2)).tolist(), rel=0.15)


def test_uncertainty_classification_uses_eq_10() -> None:
    """Eq. 10: 1/sigma^2 L + log sigma -> stationary at sigma^2 = 2 L (weight 1 / (2 L))."""
    weighting = Uncertainty(["multiclass"])
    opt = torch.optim.SGD(weighting.parameters(), lr=0.5)
    loss = torch.tensor([0.8])
    for _ in range(400):
        opt.zero_grad()
        weighting.own_backward(loss, [0])
        opt.step()
    assert float(weighting.log_variance.detach()) == pytest.approx(math.log(1.6), abs=1e-4)
    assert float(weighting.weights(loss, [0])) == pytest.approx(1 / 1.6, abs=1e-4)


def test_dwa_follows_eq_7() -> None:
    dwa = DynamicWeightAverage(2, temperature=2.0, window=3)
    per_window = [(4.0, 1.0), (2.0, 1.0), (1.0, 1.0)]  # task 0 halves every window, task 1 stays
    seen = []
    for l0, l1 in per_window:
        for _ in range(3):
            seen.append(dwa.weights(torch.zeros(2), [0, 1]).tolist())
            dwa.observe(torch.tensor([l0, l1]), [0, 1])
    assert all(w == [1.0, 1.0] for w in seen[:6])  # fewer than two complete windows so far
    r = torch.tensor([1.0 / 2.0, 1.0 / 1.0])  # L(e-1) / L(e-2) of the last two windows
    expected = 2 * torch.exp(r / 2) / torch.exp(r / 2).sum()
    assert all(w == pytest.approx(expected.tolist()) for w in seen[6:])  # windows 1, 2: 2/4 and 1/1
    torch.testing.assert_close(dwa.weights(torch.zeros(2), [0, 1]), expected.to(torch.float32))
    assert float(dwa.all_weights().sum()) == pytest.approx(2.0)


def test_dwa_alternating_mode_counts_each_task_separately() -> None:
    dwa = DynamicWeightAverage(2, window=2)
    for loss in (4.0, 4.0, 2.0, 2.0):
        dwa.observe(torch.tensor([loss]), [0])
        dwa.observe(torch.tensor([1.0]), [1])
    torch.testing.assert_close(dwa.weights(torch.zeros(1), [0]),
                               (2 * torch.softmax(torch.tensor([0.5, 1.0]) / 2, 0))[:1])


def test_gradnorm_equalises_weighted_gradient_norms() -> None:
    """Equal loss ratios (r_t = 1): the fixed point has w_t ||grad L_t|| equal for all tasks, so
    norms (4, 1) give w proportional to (1/4, 1), i.e. (0.4, 1.6) after renormalising to sum 2."""
    gradnorm = GradNorm(2, alpha=1.5)
    opt = torch.optim.Adam(gradnorm.parameters(), lr=0.01)
    norms, losses = torch.tensor([4.0, 1.0]), torch.tensor([2.0, 0.5])
    for step in range(1500):
        opt.zero_grad()
        gradnorm.weights(losses, [0, 1])
        gradnorm.observe_gradients(norms, losses * 0.9 ** min(step, 5), [0, 1])
        opt.step()
    w = gradnorm.weights(losses, [0, 1])
    assert w.tolist() == pytest.approx([0.4, 1.6], abs=0.03)


def test_gradnorm_favours_the_task_that_trains_slower() -> None:
    """alpha > 0: a task whose loss fell less (larger r_t) gets a larger target, hence weight."""
    gradnorm = GradNorm(2, alpha=1.5)
    opt = torch.optim.SGD(gradnorm.parameters(), lr=0.01)
    gradnorm.observe_gradients(torch.ones(2), torch.tensor([1.0, 1.0]), [0, 1])  # L(0)
    for _ in range(300):
        opt.zero_grad()
        gradnorm.weights(torch.ones(2), [0, 1])
        gradnorm.observe_gradients(torch.ones(2), torch.tensor([0.2, 0.8]), [0, 1])
        opt.step()
    w = gradnorm.weights(torch.ones(2), [0, 1])
    # fixed point: w_t proportional to r_t^alpha with r = (0.4, 1.6)
    expected = torch.tensor([0.4, 1.6]) ** 1.5
    assert w.tolist() == pytest.approx((2 * expected / expected.sum()).tolist(), abs=0.03)


def test_unknown_weighting_and_option_are_named() -> None:
    with pytest.raises(ConfigError, match="unknown weighting 'uncertainity'.*Did you mean 'uncertainty'"):
        build_weighting("uncertainity", ["regression"])
    with pytest.raises(ConfigError, match=r"'dwa' does not take \['alpha'\]"):
        build_weighting("dwa", ["regression"], {"alpha": 1.0})
    with pytest.raises(ConfigError, match="window must be >= 1 update, got 0"):
        build_weighting("dwa", ["regression"], {"window": 0})
