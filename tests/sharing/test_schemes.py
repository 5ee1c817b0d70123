"""Every registered scheme honours the contract; the fixed schemes equal loops written from Eqs. 2-3.

The reference loops below are written straight from the paper's equations, one task and one
layer at a time through ``bank.forward_one``; the schemes run all tasks stacked.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import Tensor, nn

from sharewise.components.layer_bank import DenseLayerBank, ModuleLayerBank
from sharewise.errors import ConfigError, ShapeError
from sharewise.sharing import (
    CoreSpec,
    Parallel,
    Permuted,
    SharingScheme,
    SingleTask,
    available_schemes,
    check_reorderable,
    create_scheme,
)

WIDTH, DEPTH, BATCH = 6, 3, 5


def dense_core(depth: int = DEPTH, width: int = WIDTH, dropout: float = 0.0) -> CoreSpec:
    return CoreSpec(make_bank=lambda n: DenseLayerBank(n, width), depth=depth, feature_shape=(width,),
                    dropout=dropout)


def randomize(module: nn.Module, seed: int = 0) -> None:
    """Non-zero random values for every parameter (zero biases / equal logits hide bugs)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)


# -- the contract, for every registered scheme ---------------------------------------------

def test_core_schemes_are_registered() -> None:
    names = available_schemes()
    assert {"single_task", "parallel", "permuted", "soft_ordering", "soft_ordering_uniform"} <= set(names)
    assert names == sorted(names)


# Options for schemes that cannot be built from the core alone (T=3 tasks, depth 3).
REQUIRED_OPTIONS: dict[str, dict] = {
    "branched": {"tree": [[[0, 1, 2]], [[0, 1], [2]], [[0], [1], [2]]]},
}


@pytest.mark.parametrize("name", available_schemes())
def test_every_scheme_shapes_gradients_and_determinism(name: str) -> None:
    torch.manual_seed(0)
    n_tasks = 3  # no_sharing needs T <= its component count (4 by default)
    scheme = create_scheme(name, dense_core(dropout=0.25), n_tasks, seed=1,
                           options=REQUIRED_OPTIONS.get(name))
    assert isinstance(scheme, SharingScheme)
    x = torch.randn(n_tasks, BATCH, WIDTH)

    scheme.train()
    scheme.on_update(0)
    y = scheme(x)
    assert y.shape == (n_tasks, BATCH, WIDTH)
    assert torch.isfinite(y).all()
    loss = (y * torch.randn_like(y)).sum()  # random projection: no gradient cancels by symmetry
    reg = scheme.regularizer()
    if reg is not None:
        loss = loss + reg
    loss.backward()
    params = dict(scheme.named_parameters())
    assert params, f"{name} has no parameters"
    for pname, p in params.items():
        assert p.grad is not None, f"{name}: parameter {pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}: parameter {pname} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{name}: parameter {pname} got an all-zero gradient"
    arch = scheme.architecture_parameters()
    assert {id(p) for p in arch} <= {id(p) for p in params.values()}
    for p in arch:
        assert p.grad is not None and p.grad.abs().sum() > 0

    # A subset of tasks in any order (the alternating step and evaluation use this path).
    y_sub = scheme(x[[2, 0]], tasks=[2, 0])
    assert y_sub.shape == (2, BATCH, WIDTH) and torch.isfinite(y_sub).all()

    scheme.eval()
    with torch.no_grad():
        a, b = scheme(x), scheme(x)
        assert torch.equal(a, b), f"{name} is not deterministic in eval mode"
        assert torch.isfinite(a).all()
    json.dumps(scheme.learned_structure())
    json.dumps(scheme.step_metrics())


def test_unknown_scheme_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="soft_orderin'.*Did you mean 'soft_ordering'.*parallel"):
        create_scheme("soft_orderin", dense_core(), 2)


def test_unknown_option_is_named() -> None:
    with pytest.raises(ConfigError, match=r"\['temperature'\]"):
        create_scheme("soft_ordering", dense_core(), 2, options={"temperature": 1.0})


# -- fixed schemes equal reference loops ---------------------------------------------------

def loop_fixed(bank: DenseLayerBank, x: Tensor, tasks: list[int], layer: callable) -> Tensor:  # type: ignore[valid-type]
    """Eqs. 2-3 literally: task t applies ``layer(t, k)`` at depth k, one task at a time."""
    outs = []
    for i, t in enumerate(tasks):
        y = x[i]  # [B, f]
        for k in range(DEPTH):
            w, b = bank.layer_weight(layer(t, k))  # [in, out], [out]
            y = torch.relu(y @ w + b)
        outs.append(y)
    return torch.stack(outs)  # [T', B, f]


def assert_forward_and_grads_equal(scheme: nn.Module, run_scheme: callable, run_loop: callable) -> None:  # type: ignore[valid-type]
    params = [p for p in scheme.parameters()]
    y, y_ref = run_scheme(), run_loop()
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-6)
    g = torch.randn_like(y)
    grads = torch.autograd.grad((y * g).sum(), params)
    grads_ref = torch.autograd.grad((y_ref * g).sum(), params)
    for p, a, b in zip(params, grads, grads_ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


CASES = [(1, None), (3, None), (7, None), (3, [2, 0]), (7, [2, 0])]


@pytest.mark.parametrize(("n_tasks", "tasks"), CASES)
def test_parallel_equals_eq2_loop(n_tasks: int, tasks: list[int] | None) -> None:
    torch.manual_seed(n_tasks)
    scheme = create_scheme("parallel", dense_core(), n_tasks)
    assert isinstance(scheme, Parallel)
    randomize(scheme)
    ids = tasks or list(range(n_tasks))
    x = torch.randn(len(ids), BATCH, WIDTH)
    assert_forward_and_grads_equal(scheme, lambda: scheme(x, tasks),
                                   lambda: loop_fixed(scheme.bank, x, ids, lambda t, k: k))


@pytest.mark.parametrize(("n_tasks", "tasks"), CASES)
def test_permuted_equals_eq3_loop(n_tasks: int, tasks: list[int] | None) -> None:
    torch.manual_seed(n_tasks)
    scheme = create_scheme("permuted", dense_core(), n_tasks, seed=3)
    assert isinstance(scheme, Permuted)
    randomize(scheme)
    perms = scheme.permutations.tolist()
    ids = tasks or list(range(n_tasks))
    x = torch.randn(len(ids), BATCH, WIDTH)
    assert_forward_and_grads_equal(scheme, lambda: scheme(x, tasks),
                                   lambda: loop_fixed(scheme.bank, x, ids, lambda t, k: perms[t][k]))


@pytest.mark.parametrize(("n_tasks", "tasks"), CASES)
def test_single_task_equals_separate_networks(n_tasks: int, tasks: list[int] | None) -> None:
    torch.manual_seed(n_tasks)
    scheme = create_scheme("single_task", dense_core(), n_tasks)
    assert isinstance(scheme, SingleTask)
    assert scheme.bank.n_layers == n_tasks * DEPTH
    randomize(scheme)
    ids = tasks or list(range(n_tasks))
    x = torch.randn(len(ids), BATCH, WIDTH)
    assert_forward_and_grads_equal(scheme, lambda: scheme(x, tasks),
                                   lambda: loop_fixed(scheme.bank, x, ids, lambda t, k: t * DEPTH + k))


def test_single_task_shares_nothing() -> None:
    scheme = create_scheme("single_task", dense_core(), 3)
    randomize(scheme)
    y = scheme(torch.randn(3, BATCH, WIDTH))
    (g,) = torch.autograd.grad(y[1].sum(), [scheme.bank.weight])
    used = g.abs().sum(dim=(0, 2)) > 0  # [3*D] layers that task 1's output depends on
    assert used.tolist() == [False] * DEPTH + [True] * DEPTH + [False] * DEPTH


def test_permutations_are_seeded_permutations() -> None:
    a = create_scheme("permuted", dense_core(depth=4), 6, seed=5)
    b = create_scheme("permuted", dense_core(depth=4), 6, seed=5)
    c = create_scheme("permuted", dense_core(depth=4), 6, seed=6)
    assert torch.equal(a.permutations, b.permutations)
    assert not torch.equal(a.permutations, c.permutations)
    for row in a.permutations.tolist():
        assert sorted(row) == [0, 1, 2, 3]
    assert a.learned_structure() == {"permutations": a.permutations.tolist()}


def test_permuted_state_dict_restores_the_orders() -> None:
    a = create_scheme("permuted", dense_core(), 4, seed=0)
    b = create_scheme("permuted", dense_core(), 4, seed=1)
    b.load_state_dict(a.state_dict())
    x = torch.randn(4, BATCH, WIDTH)
    assert torch.equal(a(x), b(x))


def test_permuted_rejects_wrong_permutation_shape() -> None:
    with pytest.raises(ValueError, match=r"\[3, 2\], got \[2, 2\]"):
        Permuted(DenseLayerBank(2, 4), 3, 2, 0.0, torch.zeros(2, 2, dtype=torch.long))


# -- reorderability ------------------------------------------------------------------------

def narrowing_core(depth: int = 2) -> CoreSpec:
    """Dense layers 32 -> 16: fine in a fixed order only if nothing needs a 32-wide input later."""
    return CoreSpec(make_bank=lambda n: DenseLayerBank(n, 16, in_width=32), depth=depth, feature_shape=(32,))


@pytest.mark.parametrize("name", ["soft_ordering", "soft_ordering_uniform", "permuted"])
def test_reordering_schemes_reject_a_narrowing_layer(name: str) -> None:
    with pytest.raises(ShapeError, match=rf"'{name}'.*core layer 0 maps \[32\] -> \[16\]"):
        create_scheme(name, narrowing_core(), 2)


def test_layers_of_different_output_shapes_are_named() -> None:
    bank = ModuleLayerBank([nn.Linear(8, 8), nn.Linear(8, 5), nn.Linear(8, 8)])
    with pytest.raises(ShapeError, match=r"layer 0 \(Linear\): \[8\], core layer 1 \(Linear\): \[5\], core layer 2 \(Linear\): \[8\]"):
        check_reorderable(bank, (8,), 3, "soft_ordering")


def test_a_layer_that_cannot_take_the_input_is_named() -> None:
    bank = ModuleLayerBank([nn.Linear(8, 8), nn.Linear(7, 8)])
    with pytest.raises(ShapeError, match=r"core layer 1 \(Linear\) cannot take an input of shape \[8\] at depth 0"):
        check_reorderable(bank, (8,), 2, "permuted")


def test_parallel_does_not_need_reorderable_layers() -> None:
    # A chain 32 -> 16 -> 16 is a valid fixed order (Eq. 2) though not reorderable.
    core = CoreSpec(make_bank=lambda n: ModuleLayerBank([nn.Linear(32, 16), nn.Linear(16, 16)][:n]),
                    depth=2, feature_shape=(32,))
    scheme = create_scheme("parallel", core, 3)
    assert scheme(torch.randn(3, BATCH, 32)).shape == (3, BATCH, 16)
    with pytest.raises(ShapeError, match=r"core layer 1 \(Linear\) cannot take an input of shape \[32\]"):
        create_scheme("soft_ordering", core, 3)
    # Depth 1 of the dense 32 -> 16 bank is fine for parallel as well.
    assert create_scheme("parallel", narrowing_core(depth=1), 2)(torch.randn(2, 4, 32)).shape == (2, 4, 16)


def test_conv_layers_that_pool_are_reorderable() -> None:
    from sharewise.components.conv import ConvPoolLayer

    bank = ModuleLayerBank([ConvPoolLayer(3) for _ in range(2)])
    check_reorderable(bank, (3, 8, 8), 2, "soft_ordering")  # [3, 8, 8] -> [3, 4, 4] -> [3, 2, 2]
