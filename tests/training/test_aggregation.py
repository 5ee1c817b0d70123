"""Gradient aggregation: TorchJD aggregators on per-task gradients, plain and structure-aware."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from sharewise.config.validate import parse_config
from sharewise.errors import ConfigError
from sharewise.runner import prepare
from sharewise.training.aggregation import build_aggregator, task_gradients
from sharewise.training.balancing import Balancer, build_balancer
from sharewise.training.distributed import SINGLE
from sharewise.training.trainer import Trainer
from sharewise.training.weighting import LossWeighting

pytest.importorskip("torchjd", reason="sharewise[jd] is installed by `make test`; this skip is for bare installs")

FOUR = ["iris", "wine", "breast_cancer", "friedman1"]
TWO_BRANCHES = [[[0, 1], [2, 3]], [[0, 1], [2, 3]], [[0, 1], [2, 3]]]  # groups {0,1} and {2,3} share nothing


def _config(scheme: str, **scheme_options: Any) -> dict[str, Any]:
    return {"name": "agg", "scheme": scheme, "scheme_options": scheme_options,
            "tasks": {"builder": "demo", "options": {"names": FOUR}},
            "model": {"core": {"width": 8, "depth": 3, "dropout": 0.0}},
            "train": {"steps": 1, "batch_size": 16, "threads": 1}}


def _step(cfg_dict: dict[str, Any], scale: list[float] | None = None, **train: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    """One step's gradients: the default summed-loss backward, or the balancer's (``train``)."""
    cfg_dict = {**cfg_dict, "train": {**cfg_dict["train"], **train}}
    cfg, tasks, model = prepare(cfg_dict, None)
    trainer = Trainer(cfg, model, tasks)
    x, y = trainer.sampler.next()
    model.scheme.on_update(0)
    losses, _ = trainer.loss_fn(model(x), y)  # [T]
    if scale is not None:
        losses = losses * torch.tensor(scale)
    if trainer.balancer is None:
        losses.sum().backward()
    else:
        trainer.balancer.backward(losses, None, None)
    return model, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("scheme,options", [("parallel", {}), ("gumbel_matrix", {}),
                                            ("branched", {"tree": TWO_BRANCHES})])
@pytest.mark.parametrize("aware", [False, True])
def test_mean_aggregator_update_equals_the_summed_loss_update(scheme: str, options: dict, aware: bool) -> None:
    _, summed = _step(_config(scheme, **options))
    _, mean = _step(_config(scheme, **options), aggregator="mean", structure_aware=aware)
    assert summed.keys() == mean.keys()
    for name, grad in summed.items():
        torch.testing.assert_close(mean[name], grad, rtol=1e-5, atol=1e-6, msg=name)


def test_upgrad_update_never_conflicts_with_a_task_gradient() -> None:
    """UPGrad (Quinton & Rey 2024) projects onto the dual cone: <update, g_t> >= 0 for every task,
    on the shared block (here with task 3's loss scaled x5 so that the sum conflicts with task 0).
    TorchJD regularises the normalised Gramian (reg_eps 1e-4), so with norms 100x apart the
    guarantee holds only approximately; x5 keeps it exact."""
    cfg_dict = _config("parallel")
    cfg, tasks, model = prepare(cfg_dict, None)
    trainer = Trainer(cfg, model, tasks)
    x, y = trainer.sampler.next()
    losses, _ = trainer.loss_fn(model(x), y)
    losses = losses * torch.tensor([1.0, 1.0, 1.0, 5.0])
    params = [p for p in model.parameters() if p.requires_grad]
    G, _, _ = task_gradients(losses, params)  # [T, N]
    balancer = Balancer(model, LossWeighting(4), build_aggregator("upgrad"), "upgrad", False, SINGLE)
    balancer.backward(losses, None, None)
    update = torch.cat([p.grad.reshape(-1) for p in params])
    shared = balancer.shared
    inner = G[:, shared] @ update[shared]  # [T]
    assert bool((inner >= -1e-6 * update[shared].norm() * G[:, shared].norm(dim=1)).all()), inner
    # ... while the summed-loss update conflicts with at least one task here (the test can fail)
    assert bool(((G[:, shared] @ G[:, shared].sum(0)) < 0).any())
    # encoders and heads: each element has one task's gradient, and gets exactly that
    assert int((G[:, ~shared] != 0).sum(0).max()) == 1
    torch.testing.assert_close(update[~shared], G[:, ~shared].sum(0), rtol=0, atol=0)


@pytest.mark.parametrize("aggregator", ["upgrad", "mgda"])
def test_structure_aware_never_mixes_branches_that_share_nothing(aggregator: str) -> None:
    """Branched tree whose groups {0,1} and {2,3} share nothing: the update of group {0,1}'s
    blocks is the aggregator over tasks 0 and 1 alone, whatever tasks 2 and 3 do. The plain
    aggregator (all core blocks one matrix) mixes them under MGDA (one convex combination for
    all tasks); UPGrad's dual-cone projections separate over orthogonal blocks by themselves."""
    cfg = _config("branched", tree=TWO_BRANCHES)
    scale = [1.0, 1.0, 30.0, 7.0]
    model, aware = _step(cfg, aggregator=aggregator, structure_aware=True)
    _, aware_scaled = _step(cfg, scale=scale, aggregator=aggregator, structure_aware=True)
    _, plain = _step(cfg, aggregator=aggregator)
    _, plain_scaled = _step(cfg, scale=scale, aggregator=aggregator)
    layers_a = torch.tensor([model.scheme.layer_of[d][0] for d in range(3)])  # group {0,1}'s copies
    for key, dim in (("scheme.bank.weight", 1), ("scheme.bank.bias", 0)):
        pick = lambda g: g[key].index_select(dim, layers_a)  # noqa: E731
        torch.testing.assert_close(pick(aware_scaled), pick(aware), rtol=0, atol=0)
        if aggregator == "mgda":
            assert not torch.allclose(pick(plain_scaled), pick(plain), atol=1e-6)
    # the block equals the aggregator applied to tasks 0 and 1's gradients alone (times 2 users)
    _, alone = _step(cfg, scale=[1.0, 1.0, 0.0, 0.0], aggregator=aggregator, structure_aware=True)
    pick_w = lambda g: g["scheme.bank.weight"].index_select(1, layers_a)  # noqa: E731
    torch.testing.assert_close(pick_w(alone), pick_w(aware))


@pytest.mark.parametrize("scheme,options", [
    ("parallel", {}), ("single_task", {}), ("soft_ordering", {}), ("branched", {"tree": TWO_BRANCHES}),
    ("gumbel_matrix", {}), ("no_sharing", {}), ("shared_bottom", {}), ("cross_stitch", {}), ("nddr", {}),
    ("permuted", {})])
def test_declared_non_users_get_no_gradient(scheme: str, options: dict) -> None:
    """The usage contract agrees with autograd: a task declared not to use an element has a zero
    gradient there (Gumbel-Matrix: under the sampled allocation of this very forward pass)."""
    cfg, tasks, model = prepare(_config(scheme, **options), None)
    trainer = Trainer(cfg, model, tasks)
    x, y = trainer.sampler.next()
    losses, _ = trainer.loss_fn(model(x), y)
    params = [p for p in model.parameters() if p.requires_grad]
    G, _, _ = task_gradients(losses, params)
    balancer = Balancer(model, LossWeighting(4), build_aggregator("upgrad"), "upgrad", True, SINGLE)
    users = balancer._users(None, 4)  # [T, N]
    assert users.shape == G.shape
    assert float(G[~users].abs().max()) == 0.0
    if scheme in ("single_task", "branched", "gumbel_matrix", "no_sharing"):
        assert not bool(users[:, balancer.shared].all())  # the core really is split among tasks


def test_default_builds_no_balancer_and_bad_settings_are_named() -> None:
    cfg = parse_config(_config("parallel"))
    assert build_balancer(cfg.train, prepare(_config("parallel"), None)[2], ["regression"] * 4, SINGLE) is None
    with pytest.raises(ConfigError, match="unknown TorchJD aggregator 'upgrd'.*Did you mean 'upgrad'"):
        parse_config({**_config("parallel"), "train": {"aggregator": "upgrd"}})
    with pytest.raises(ConfigError, match="train.structure_aware: needs a gradient aggregator"):
        parse_config({**_config("parallel"), "train": {"structure_aware": True}})
    with pytest.raises(ConfigError, match="aggregator='trimmed_mean'.*missing 1 required positional argument: "
                                          "'trim_number'"):
        parse_config({**_config("parallel"), "train": {"aggregator": "trimmed_mean"}})
    assert parse_config({**_config("parallel"), "train": {"aggregator": "TrimmedMean",
                                                          "aggregator_options": {"trim_number": 1}}}).train.aggregator
