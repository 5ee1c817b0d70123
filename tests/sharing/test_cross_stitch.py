"""Cross-stitch: init values, identity mixing = independent columns, Eq. 1 by a loop, optimiser group."""

from __future__ import annotations

import pytest
import torch

from sharewise.config import parse_config
from sharewise.errors import ConfigError
from sharewise.sharing import create_scheme
from sharewise.training.optim import build_optimizer
from tests.sharing._branched_helpers import build, conv_cfg, conv_core, dense_core


def test_init_is_alpha_self_on_the_diagonal_and_the_rest_spread_over_the_others() -> None:
    scheme = create_scheme("cross_stitch", dense_core(depth=2), 4)
    alpha = torch.stack(list(scheme.alpha))
    assert alpha.shape == (2, 4, 4)
    assert alpha[1, 2, 2].item() == pytest.approx(0.9)
    assert alpha[1, 2, 0].item() == pytest.approx(0.1 / 3)
    torch.testing.assert_close(alpha.sum(-1), torch.ones(2, 4))


@pytest.mark.parametrize("core", [conv_core(), dense_core()], ids=["conv", "dense"])
def test_identity_mixing_equals_independent_columns(core) -> None:
    torch.manual_seed(0)
    stitch = create_scheme("cross_stitch", core, 4)
    single = create_scheme("single_task", core, 4)
    single.bank.load_state_dict(stitch.bank.state_dict())
    with torch.no_grad():
        for unit in stitch.alpha:
            unit.copy_(torch.eye(4))
    x = torch.randn(4, 3, *core.feature_shape)
    torch.testing.assert_close(stitch(x), single(x))


def test_forward_equals_eq1_written_as_a_loop() -> None:
    torch.manual_seed(0)
    core = dense_core(depth=2)
    scheme = create_scheme("cross_stitch", core, 3)
    with torch.no_grad():
        for unit in scheme.alpha:
            unit.normal_()
    x = torch.randn(3, 2, 5)
    h = [x[t] for t in range(3)]
    for d in range(2):
        h = [scheme.bank.forward_one(t * 2 + d, h[t]) for t in range(3)]
        h = [sum(scheme.alpha[d][i, j] * h[j] for j in range(3)) for i in range(3)]
    torch.testing.assert_close(scheme(x), torch.stack(h))
    # a subset of tasks (evaluation) on shared inputs gives the same rows
    shared = x[:1].expand(3, 2, 5)
    torch.testing.assert_close(scheme(shared[:1], [2]), scheme(shared)[2:3])


def test_alpha_is_an_architecture_group_with_the_lr_multiplier_and_gets_gradients() -> None:
    model = build("cross_stitch", seed=1, arch_lr_multiplier=25.0)  # seed 0: one column's ReLUs start dead
    cfg = parse_config(conv_cfg("cross_stitch"))
    _, groups = build_optimizer(model, cfg.train)
    assert groups[1] == {"name": "architecture", "lr": pytest.approx(25 * cfg.train.lr), "n_params": 3 * 4 * 4}
    model(torch.rand(4, 16, 1, 8, 8)).square().sum().backward()
    for name, p in model.scheme.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_alpha_self_outside_0_1_is_rejected() -> None:
    with pytest.raises(ConfigError, match="got 1.5"):
        create_scheme("cross_stitch", dense_core(), 2, options={"alpha_self": 1.5})


def test_a_state_saved_with_one_alpha_tensor_still_loads() -> None:
    """Before issue 10 the units were one parameter ``alpha [D, T, T]``; run directories written
    then (best.pt) load into the per-depth units."""
    scheme = create_scheme("cross_stitch", dense_core(depth=2), 3)
    state = {k: v for k, v in scheme.state_dict().items() if not k.startswith("alpha.")}
    state["alpha"] = torch.arange(18.0).view(2, 3, 3)
    scheme.load_state_dict(state)
    assert torch.equal(scheme.alpha[0], torch.arange(9.0).view(3, 3))
    assert torch.equal(scheme.alpha[1], torch.arange(9.0, 18.0).view(3, 3))
