"""Gumbel-Matrix routing and its baselines (Maziarz et al., Sec. III; the authors' code for details)."""

from __future__ import annotations

import io
import json

import pytest
import torch

from sharewise.components.layer_bank import DenseLayerBank
from sharewise.components.modular import loop_forward
from sharewise.components.modular_sets import build_modular_network
from sharewise.errors import ConfigError
from sharewise.sharing import CoreSpec, available_schemes, create_scheme
from sharewise.sharing._gumbel import (
    TemperatureSchedule,
    allocation_logits_init,
    gumbel_noise,
    ml_allocation,
    straight_through_sample,
)
from sharewise.sharing.gumbel_matrix import GumbelMatrix, no_sharing_allocation


def dense_core(depth: int = 2, width: int = 6, dropout: float = 0.0) -> CoreSpec:
    return CoreSpec(make_bank=lambda n: DenseLayerBank(n, width), depth=depth, feature_shape=(width,), dropout=dropout)


def test_straight_through_forward_is_binary_and_gradient_is_the_soft_samples() -> None:
    torch.manual_seed(0)
    logits = torch.randn(5, 4, 2, requires_grad=True)
    noise = gumbel_noise((5, 4, 2), torch.Generator().manual_seed(3))
    z = straight_through_sample(logits, noise, tau=0.7)
    assert set(z.detach().unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(z.detach(), ((logits + noise)[..., 0] >= (logits + noise)[..., 1]).float())
    v = torch.randn(5, 4)
    (g_st,) = torch.autograd.grad((z * v).sum(), logits)
    soft = torch.softmax((logits + noise) / 0.7, dim=-1)[..., 0]
    (g_soft,) = torch.autograd.grad((soft * v).sum(), logits)
    assert torch.allclose(g_st, g_soft, atol=1e-7)
    assert bool((g_st != 0).any())


def test_near_zero_temperature_without_noise_picks_the_argmax() -> None:
    logits = torch.randn(6, 5, 2)
    z = straight_through_sample(logits, None, tau=1e-6)
    assert torch.equal(z, (logits[..., 0] > logits[..., 1]).float())
    soft = torch.softmax(logits / 1e-6, dim=-1)[..., 0]
    assert torch.allclose(soft, z)  # the soft sample is itself one-hot in the limit


def test_gumbel_noise_formula_and_generator() -> None:
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    u = torch.rand((3, 2), generator=g2)
    assert torch.allclose(gumbel_noise((3, 2), g1), -torch.log(-torch.log(u + 1e-20) + 1e-20))


def test_logits_init_and_temperature_schedule() -> None:
    logits = allocation_logits_init((2, 3), 0.97)
    assert torch.allclose(torch.softmax(logits, -1)[..., 0], torch.full((2, 3), 0.97))
    tau = TemperatureSchedule()
    assert [tau(0), tau(99), tau(9999), tau(10**6)] == [50.0, 5.0, 0.5, 0.5]
    assert TemperatureSchedule(10.0, 1.0)(3) == 5.0
    with pytest.raises(ConfigError, match="got 1.0"):
        allocation_logits_init((1,), 1.0)


def test_budget_penalty_value_and_gradient_hand_computed() -> None:
    net = build_modular_network("mlp", (6,), n_components=3, n_layers=2, out_features=6)
    scheme = GumbelMatrix(net, 3, p_init=0.8, budget=0.5, budget_weight=2.0)
    scheme.train()
    scheme(torch.randn(1, 4, 6), tasks=[1])  # the paper's alternating mode: one task per step
    pen = scheme.regularizer()
    assert pen is not None and abs(pen.item() - 2.0 * (0.8 - 0.5)) < 1e-6
    pen.backward()
    n = 3 + 3  # task 1's connections over both layers
    for lg in scheme.logits:
        expect = torch.zeros(3, 3, 2)
        expect[1, :, 0] = 2.0 * 0.8 * 0.2 / n  # d p / d logit_on = p (1 - p)
        expect[1, :, 1] = -2.0 * 0.8 * 0.2 / n
        assert torch.allclose(lg.grad, expect, atol=1e-7)
    under = GumbelMatrix(net, 3, p_init=0.8, budget=0.9)
    assert under.regularizer().item() == 0.0
    assert GumbelMatrix(net, 3).regularizer() is None


@pytest.mark.parametrize("budget", [0.0, 1.5, -0.2])
def test_budget_outside_unit_interval_raises(budget: float) -> None:
    with pytest.raises(ConfigError, match=f"got {budget}"):
        create_scheme("gumbel_matrix", dense_core(), 2, options={"budget": budget})
    create_scheme("gumbel_matrix", dense_core(), 2, options={"budget": 1.0})  # 1 is allowed


def test_baseline_allocations() -> None:
    shared = create_scheme("shared_bottom", dense_core(), 3)
    assert shared.learned_structure()["allocation"]["2"] == [[1, 1, 1, 1], [1, 1, 1, 1]]
    own = create_scheme("no_sharing", dense_core(), 4)
    assert own.learned_structure()["allocation"]["2"] == [[0, 0, 1, 0], [0, 0, 1, 0]]
    assert torch.equal(no_sharing_allocation(2, 4), torch.tensor([[1.0, 1, 0, 0], [0, 0, 1, 1]]))  # Sec. II
    with pytest.raises(ConfigError, match="T=5 tasks and C=4 components"):
        create_scheme("no_sharing", dense_core(), 5)


def test_no_sharing_equals_separate_components() -> None:
    scheme = create_scheme("no_sharing", dense_core(depth=1), 4)
    x = torch.randn(4, 3, 6)
    bank = scheme.network.layers[0].bank
    assert torch.allclose(scheme(x), torch.stack([bank.forward_one(t, x[t]) for t in range(4)]), atol=1e-6)


def test_training_forward_equals_reference_with_the_same_sample() -> None:
    net = build_modular_network("mnist4", (1, 28, 28))
    a = GumbelMatrix(net, 4, seed=7).train()
    b = GumbelMatrix(net, 4, seed=7).train()
    x = torch.randn(4, 2, 1, 28, 28)
    y = a(x)
    assert torch.allclose(y, loop_forward(net, x, b.allocation()), atol=1e-6)


@pytest.mark.parametrize("tasks", [None, [2, 0]])
def test_one_draw_for_all_layers_equals_one_draw_per_layer(tasks: list[int] | None) -> None:
    """The layers' samples come from one noise draw: values and logit gradients equal drawing
    per layer in turn from the same generator (so runs and resumes keep their random stream)."""
    net = build_modular_network("clusters", (1, 8, 8), n_layers=2, kernels=(3, 3, 5))  # C = 3 per layer
    scheme = GumbelMatrix(net, 3, seed=5).train()
    with torch.no_grad():
        for lg in scheme.logits:
            lg.add_(torch.randn_like(lg))
    gen = torch.Generator().manual_seed(5)
    ids = [0, 1, 2] if tasks is None else tasks
    want = [straight_through_sample(lg[ids], gumbel_noise((len(ids), lg.shape[1], 2), gen), scheme.temperature)
            for lg in scheme.logits]
    got = scheme.allocation(tasks)
    assert all(torch.equal(a, b) for a, b in zip(got, want))
    weights = [torch.randn_like(a) for a in got]
    g_got = torch.autograd.grad(sum((a * w).sum() for a, w in zip(got, weights)), list(scheme.logits))
    g_want = torch.autograd.grad(sum((a * w).sum() for a, w in zip(want, weights)), list(scheme.logits))
    assert all(torch.allclose(a, b, atol=1e-7) for a, b in zip(g_got, g_want))
    assert torch.equal(scheme.generator.get_state(), gen.get_state())


def test_eval_uses_the_maximum_likelihood_allocation_without_noise() -> None:
    net = build_modular_network("mlp", (6,), n_components=3)
    scheme = GumbelMatrix(net, 2, seed=0)
    with torch.no_grad():
        scheme.logits[0].copy_(torch.tensor([[[1.0, 0.0], [0.0, 2.0], [0.3, 0.3]],
                                             [[-1.0, 0.0], [2.0, 0.0], [0.0, 5.0]]]))
    state = scheme.generator_state().clone()
    scheme.eval()
    (z,) = scheme.allocation()
    assert torch.equal(z, torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]))  # p >= 0.5 (tie at 0.3/0.3 on)
    assert torch.equal(scheme.generator_state(), state)  # no noise drawn
    x = torch.randn(2, 3, 6)
    assert torch.allclose(scheme(x), loop_forward(net, x, [z]), atol=1e-6)
    scheme.eval_sampling = True
    scheme.allocation()
    assert not torch.equal(scheme.generator_state(), state)


def test_every_parameter_gets_a_gradient_including_the_logits() -> None:
    core = CoreSpec(make_bank=lambda n: DenseLayerBank(n, 6), depth=2, feature_shape=(1, 28, 28))
    for name, opts in [("gumbel_matrix", {"network": "mnist4", "p_init": 0.999}),
                       ("shared_bottom", {"network": "mnist4"}),
                       ("gumbel_matrix", {"p_init": 0.999, "network": "omniglot20",
                                          "network_options": {"channels": 8, "groups": 2, "n_layers": 2}})]:
        scheme = create_scheme(name, core, 3, seed=1, options=opts).train()
        y = scheme(torch.randn(3, 4, 1, 28, 28))
        assert not torch.isnan(y).any()
        y.pow(2).sum().backward()
        for pname, p in scheme.named_parameters():
            assert p.grad is not None and bool((p.grad != 0).any()), f"{name}: {pname} has no gradient"
        assert len(scheme.architecture_parameters()) == (len(scheme.network.layers) if name == "gumbel_matrix" else 0)


def test_sampling_is_reproducible_and_resumes_exactly() -> None:
    net = build_modular_network("mlp", (6,))
    a, b = GumbelMatrix(net, 3, seed=11).train(), GumbelMatrix(net, 3, seed=11).train()
    assert all(torch.equal(p, q) for p, q in zip(a.allocation(), b.allocation()))
    assert not all(torch.equal(p, q) for p, q in zip(a.allocation(), GumbelMatrix(net, 3, seed=12).allocation()))
    a.on_update(41)
    buf = io.BytesIO()
    torch.save({"model": a.state_dict(), "gen": a.generator_state()}, buf)
    expected = [s.detach() for s in a.allocation()]
    c = GumbelMatrix(net, 3, seed=0).train()
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    c.load_state_dict(state["model"])
    c.set_generator_state(state["gen"])
    c.on_update(41)  # the trainer replays its step count
    assert c.temperature == a.temperature_schedule(41)
    assert all(torch.equal(p.detach(), q) for p, q in zip(c.allocation(), expected))
    assert isinstance(c.generator, torch.Generator)  # found by the trainer's checkpoint walk


def test_step_metrics_and_options() -> None:
    scheme = create_scheme("gumbel_matrix", dense_core(), 5, options={"budget": 0.25, "p_init": 0.75})
    scheme.train()
    scheme.on_update(99)
    scheme(torch.randn(5, 2, 6))
    m = scheme.step_metrics()
    assert m["temperature"] == 5.0
    assert m["active_fraction"] == 1.0 and abs(m["expected_active"] - 0.75) < 1e-6
    assert abs(m["budget_penalty"] - 0.5) < 1e-6
    assert 0.0 <= m["sampled_active_fraction"] <= 1.0
    assert scheme.arch_lr_multiplier == 5.0  # the paper's rule of thumb: T times the model lr
    assert create_scheme("gumbel_matrix", dense_core(), 5, options={"arch_lr_multiplier": 1}).arch_lr_multiplier == 1.0
    assert {"gumbel_matrix", "shared_bottom", "no_sharing"} <= set(available_schemes())


def test_learned_structure_allocation_and_task_similarity() -> None:
    scheme = create_scheme("gumbel_matrix", dense_core(depth=1, width=6), 3, options={"n_components": 4})
    with torch.no_grad():
        on, off = torch.tensor([5.0, 0.0]), torch.tensor([0.0, 5.0])
        pattern = [[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 1]]
        for t, row in enumerate(pattern):
            for c, v in enumerate(row):
                scheme.logits[0][t, c] = on if v else off
    s = scheme.learned_structure()
    json.dumps(s)
    assert s["allocation"] == {"0": [pattern[0]], "1": [pattern[1]], "2": [pattern[2]]}
    assert s["active_fraction"] == 5 / 12
    sim = torch.tensor(s["task_similarity"])
    expect = torch.tensor([[1.0, 2 ** -0.5, 0.0], [2 ** -0.5, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    assert torch.allclose(sim.double(), expect, atol=1e-9)
    assert abs(s["probabilities"]["0"][0][0] - torch.sigmoid(torch.tensor(5.0)).item()) < 1e-6


def test_core_network_equals_ml_reference_and_applies_dropout_in_train_only() -> None:
    scheme = create_scheme("gumbel_matrix", dense_core(dropout=0.5), 2)
    x = torch.randn(2, 8, 6)
    scheme.eval()
    assert torch.allclose(scheme(x), loop_forward(scheme.network, x, [ml_allocation(lg) for lg in scheme.logits]))
    with pytest.raises(ConfigError, match=r"got x of shape \[2, 8, 6\]"):
        scheme(x, tasks=[0])


# -- empty allocations (issue 10): reported, and optionally prevented ----------------------

def _two_layer_scheme(**options) -> GumbelMatrix:
    """3 tasks, 2 layers of 3 components; task 1 has no component in layer 1 (ML allocation)."""
    scheme = create_scheme("gumbel_matrix", dense_core(depth=2, width=6), 3, options={"n_components": 3, **options})
    with torch.no_grad():
        on, off = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 2.0])
        for lg in scheme.logits:
            lg.copy_(on.expand_as(lg))
        scheme.logits[1][1] = torch.stack([off, torch.tensor([0.0, 0.5]), off])  # p < 0.5 everywhere
    return scheme


def test_an_empty_allocation_is_reported_with_task_and_layer() -> None:
    scheme = _two_layer_scheme()
    s = scheme.learned_structure()
    assert s["empty_allocations"] == [{"task": 1, "layer": 1}] and s["keep_one_component"] is False
    (warning,) = scheme.structure_warnings(["iris", "wine", "digits"])
    assert "task 'wine' has no active component in layer 1" in warning and "keep_one_component" in warning
    scheme.eval()
    x = torch.randn(3, 4, 6)
    y = scheme(x)
    assert torch.equal(y[1], torch.zeros_like(y[1]))  # the paper's rule: an empty layer outputs 0
    assert not torch.equal(y[0], torch.zeros_like(y[0]))


def test_keep_one_component_turns_on_the_most_probable_one() -> None:
    scheme = _two_layer_scheme(keep_one_component=True)
    assert scheme.learned_structure()["empty_allocations"] == []
    assert scheme.structure_warnings(["a", "b", "c"]) == []
    scheme.eval()
    z = scheme.allocation()
    assert z[1][1].tolist() == [0.0, 1.0, 0.0]  # component 1 has the highest p (logit gap -0.5)
    assert torch.equal(z[0], torch.ones(3, 3)) and torch.equal(z[1][0], torch.ones(3))
    # In training samples too: a forced entry is exactly 1 and keeps the soft sample's gradient.
    scheme.train()
    with torch.no_grad():
        scheme.logits[1][1] = torch.tensor([[0.0, 30.0], [0.0, 29.0], [0.0, 30.0]])  # never sampled on
    z1 = scheme.allocation([1])[1]  # layer 1 of task 1 [1, C]
    assert z1.detach().tolist() == [[0.0, 1.0, 0.0]]
    (grad,) = torch.autograd.grad(z1.sum(), scheme.logits[1])
    assert grad[1].abs().sum() > 0


def test_a_run_reports_empty_allocations_in_the_summary_and_the_log(tmp_path, capsys) -> None:
    from sharewise.runner import run

    cfg = {"name": "empty", "scheme": "gumbel_matrix", "scheme_options": {"n_components": 2, "p_init": 0.001},
           "tasks": {"builder": "demo", "options": {"names": ["iris", "wine"]}},
           "model": {"core": {"width": 8, "depth": 2}},
           "train": {"steps": 2, "batch_size": 8, "eval_every": 2, "threads": 1, "mode": "alternating"}}
    summary = run(cfg, tmp_path / "run")
    # p_init 0.001: every task's ML allocation is empty in both layers
    assert len(summary["warnings"]) == 4
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["warnings"] == summary["warnings"]
    err = capsys.readouterr().err
    assert "task 'iris' has no active component in layer 0" in err and "task 'wine' has no active component in layer 1" in err
