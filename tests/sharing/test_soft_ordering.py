"""Soft layer ordering (Eq. 7): the stacked pass equals the equation's loop; one-hot scales give the
fixed-order models; the scale variants (softmax, sigmoid, frozen uniform, identity candidate)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from sharewise.components.conv import ConvPoolLayer
from sharewise.components.layer_bank import DenseLayerBank, LayerBank, ModuleLayerBank
from sharewise.errors import ConfigError
from sharewise.sharing import CoreSpec, Parallel, Permuted, SoftOrdering, create_scheme

WIDTH, DEPTH, BATCH = 6, 4, 5


def dense_core(depth: int = DEPTH, width: int = WIDTH, dropout: float = 0.0) -> CoreSpec:
    return CoreSpec(make_bank=lambda n: DenseLayerBank(n, width), depth=depth, feature_shape=(width,),
                    dropout=dropout)


def integer_valued(module: nn.Module, seed: int = 0) -> None:
    """Small integers in every parameter: every product and sum is then exact in float32, so
    models that compute the same function through different GEMM kernels agree bit for bit."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randint(-2, 3, p.shape, generator=gen).float())


def one_hot_logits(layer_of: list[list[int]], n_candidates: int) -> Tensor:
    """Logits [T, J, D] that put scale exactly 1 on candidate ``layer_of[t][k]`` (softmax)."""
    logits = torch.full((len(layer_of), n_candidates, len(layer_of[0])), -1e4)
    for t, row in enumerate(layer_of):
        for k, j in enumerate(row):
            logits[t, j, k] = 1e4
    return logits


def set_logits(scheme: SoftOrdering, logits: Tensor) -> None:
    with torch.no_grad():
        scheme.logits.copy_(logits)


# -- the reference: Eq. 7 written as a loop -------------------------------------------------

def eq7_loop(scheme: SoftOrdering, x: Tensor, tasks: list[int]) -> Tensor:
    """y_t^k = sum_j s(t,j,k) W_j(y_t^{k-1}), one task, depth and layer at a time (dropout off)."""
    bank: LayerBank = scheme.bank
    logits = scheme.logits
    outs = []
    for i, t in enumerate(tasks):
        y = x[i]  # [B, *f]
        for k in range(scheme.depth):
            if scheme.scale_fn == "softmax":
                s = torch.softmax(logits[t, :, k], dim=0)  # [J]
            else:
                s = torch.sigmoid(logits[t, :, k])
            total = 0
            for j in range(bank.n_layers):
                if isinstance(bank, DenseLayerBank):
                    w, b = bank.layer_weight(j)  # [in, out], [out]
                    layer_out = torch.relu(y @ w + b)
                else:
                    layer_out = bank.forward_one(j, y)
                total = total + s[j] * layer_out
            if scheme.identity:
                total = total + s[bank.n_layers] * y
            y = total
        outs.append(y)
    return torch.stack(outs)  # [T', B, *f]


def assert_matches_loop(scheme: SoftOrdering, x: Tensor, tasks: list[int] | None, rtol: float = 1e-5,
                        atol: float = 1e-6) -> None:
    ids = tasks or list(range(scheme.n_tasks))
    params = list(scheme.parameters())
    assert any(p is scheme.logits for p in params) or scheme.frozen
    y, y_ref = scheme(x, tasks), eq7_loop(scheme, x, ids)
    torch.testing.assert_close(y, y_ref, rtol=rtol, atol=atol)
    g = torch.randn_like(y)
    grads = torch.autograd.grad((y * g).sum(), params)
    grads_ref = torch.autograd.grad((y_ref * g).sum(), params)
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol)


def random_soft(n_tasks: int, identity: bool = False, scale_fn: str = "softmax", seed: int = 0) -> SoftOrdering:
    torch.manual_seed(seed)
    scheme = create_scheme("soft_ordering", dense_core(), n_tasks,
                           options={"identity": identity, "scale_fn": scale_fn})
    assert isinstance(scheme, SoftOrdering)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        scheme.bank.bias.normal_(0.0, 0.3, generator=gen)
        scheme.logits.normal_(0.0, 1.0, generator=gen)  # uniform logits would hide a mixing bug
    return scheme


CASES = [(1, None), (3, None), (7, None), (3, [2, 0]), (7, [2, 0])]


@pytest.mark.parametrize(("n_tasks", "tasks"), CASES)
@pytest.mark.parametrize("identity", [False, True])
def test_stacked_equals_eq7_loop_forward_and_gradients(n_tasks: int, tasks: list[int] | None,
                                                      identity: bool) -> None:
    scheme = random_soft(n_tasks, identity=identity, seed=n_tasks)
    x = torch.randn(len(tasks or range(n_tasks)), BATCH, WIDTH)
    assert_matches_loop(scheme, x, tasks)


@pytest.mark.parametrize(("n_tasks", "tasks"), [(3, None), (3, [2, 0])])
def test_sigmoid_variant_equals_its_loop(n_tasks: int, tasks: list[int] | None) -> None:
    scheme = random_soft(n_tasks, scale_fn="sigmoid", seed=11)
    x = torch.randn(len(tasks or range(n_tasks)), BATCH, WIDTH)
    assert_matches_loop(scheme, x, tasks)


@pytest.mark.parametrize(("n_tasks", "tasks"), [(1, None), (3, None), (3, [2, 0])])
@pytest.mark.parametrize(("pool", "depth", "out_side"), [(False, 3, 8), (True, 2, 2)])
def test_conv_core_equals_eq7_loop(n_tasks: int, tasks: list[int] | None, pool: bool, depth: int,
                                   out_side: int) -> None:
    torch.manual_seed(0)
    core = CoreSpec(make_bank=lambda n: ModuleLayerBank([ConvPoolLayer(3, pool=pool) for _ in range(n)]),
                    depth=depth, feature_shape=(3, 8, 8))
    scheme = create_scheme("soft_ordering", core, n_tasks)
    assert isinstance(scheme, SoftOrdering)
    with torch.no_grad():
        scheme.logits.normal_()
    x = torch.randn(len(tasks or range(n_tasks)), 2, 3, 8, 8)
    assert scheme(x, tasks).shape == (x.shape[0], 2, 3, out_side, out_side)
    assert_matches_loop(scheme, x, tasks)


# -- one-hot scales give the fixed-order models exactly -------------------------------------

@pytest.mark.parametrize("n_tasks", [1, 3])
def test_one_hot_soft_order_equals_parallel_exactly(n_tasks: int) -> None:
    soft = create_scheme("soft_ordering", dense_core(), n_tasks)
    parallel = create_scheme("parallel", dense_core(), n_tasks)
    assert isinstance(soft, SoftOrdering) and isinstance(parallel, Parallel)
    integer_valued(soft.bank)
    parallel.bank.load_state_dict(soft.bank.state_dict())
    set_logits(soft, one_hot_logits([list(range(DEPTH))] * n_tasks, DEPTH))
    assert torch.equal(soft.scales(), one_hot_logits([list(range(DEPTH))] * n_tasks, DEPTH).clamp(0, 1))
    x = torch.randint(-2, 3, (n_tasks, BATCH, WIDTH)).float()
    y = soft(x)
    assert torch.equal(y, parallel(x))
    assert y.abs().sum() > 0
    assert torch.equal(soft(x[[2 % n_tasks]], [2 % n_tasks]), parallel(x[[2 % n_tasks]], [2 % n_tasks]))


def test_one_hot_soft_order_equals_permuted_exactly() -> None:
    n_tasks = 5
    permuted = create_scheme("permuted", dense_core(), n_tasks, seed=4)
    soft = create_scheme("soft_ordering", dense_core(), n_tasks)
    assert isinstance(soft, SoftOrdering) and isinstance(permuted, Permuted)
    integer_valued(permuted.bank)
    soft.bank.load_state_dict(permuted.bank.state_dict())
    perms = permuted.permutations.tolist()
    assert len({tuple(p) for p in perms}) > 1  # the orders really differ between tasks
    set_logits(soft, one_hot_logits(perms, DEPTH))
    x = torch.randint(-2, 3, (n_tasks, BATCH, WIDTH)).float()
    y = soft(x)
    assert torch.equal(y, permuted(x))
    assert torch.equal(soft(x[[2, 0]], [2, 0]), permuted(x[[2, 0]], [2, 0]))
    # ... and the one-hot model is not the parallel one (the test can tell orders apart).
    parallel = create_scheme("parallel", dense_core(), n_tasks)
    parallel.bank.load_state_dict(permuted.bank.state_dict())
    assert not torch.equal(y, parallel(x))


def test_one_hot_equals_fixed_order_in_eval_mode_with_dropout() -> None:
    soft = create_scheme("soft_ordering", dense_core(dropout=0.5), 3)
    parallel = create_scheme("parallel", dense_core(dropout=0.5), 3)
    integer_valued(soft.bank)
    parallel.bank.load_state_dict(soft.bank.state_dict())
    set_logits(soft, one_hot_logits([list(range(DEPTH))] * 3, DEPTH))
    soft.eval()
    parallel.eval()
    x = torch.randint(-2, 3, (3, BATCH, WIDTH)).float()
    assert torch.equal(soft(x), parallel(x))


# -- the scale variants ---------------------------------------------------------------------

def test_softmax_scales_start_uniform_and_sum_to_one() -> None:
    scheme = create_scheme("soft_ordering", dense_core(), 4)
    assert isinstance(scheme, SoftOrdering)
    assert scheme.logits.shape == (4, DEPTH, DEPTH)  # [T, J, D]
    assert torch.equal(scheme.scales(), torch.full((4, DEPTH, DEPTH), 1.0 / DEPTH))
    with torch.no_grad():
        scheme.logits.normal_(0, 3)
    s = scheme.scales()
    torch.testing.assert_close(s.sum(1), torch.ones(4, DEPTH))
    assert (s > 0).all()
    torch.testing.assert_close(scheme.scales([3, 1]), s[[3, 1]])
    assert scheme.architecture_parameters() == [scheme.logits]


def test_parallel_init_puts_the_softmax_weight_e_b_over_e_b_plus_j_minus_1_on_layer_k_at_depth_k() -> None:
    b = 2.0
    scheme = create_scheme("soft_ordering", dense_core(), 3, options={"parallel_init": b})
    s = scheme.scales()
    on = torch.exp(torch.tensor(b)) / (torch.exp(torch.tensor(b)) + DEPTH - 1)
    for k in range(DEPTH):
        torch.testing.assert_close(s[:, k, k], on.expand(3))
        others = [j for j in range(DEPTH) if j != k]
        torch.testing.assert_close(s[:, others, k], ((1 - on) / (DEPTH - 1)).expand(3, DEPTH - 1))
    default = create_scheme("soft_ordering", dense_core(), 3)
    assert torch.equal(default.scales(), torch.full((3, DEPTH, DEPTH), 1.0 / DEPTH))  # the paper's start
    with pytest.raises(ConfigError, match="parallel_init must be a finite number"):
        create_scheme("soft_ordering", dense_core(), 3, options={"parallel_init": float("inf")})


def test_sigmoid_scales_lie_in_the_open_unit_interval() -> None:
    scheme = create_scheme("soft_ordering", dense_core(), 3, options={"scale_fn": "sigmoid"})
    assert isinstance(scheme, SoftOrdering)
    with torch.no_grad():
        scheme.logits.normal_(0, 3)
    s = scheme.scales()
    assert ((s > 0) & (s < 1)).all()
    torch.testing.assert_close(s, torch.sigmoid(scheme.logits))
    assert not torch.allclose(s.sum(1), torch.ones(3, DEPTH))  # independent, not normalised
    with pytest.raises(ConfigError, match="got 'tanh'"):
        SoftOrdering(DenseLayerBank(2, 4), 2, 2, 0.0, scale_fn="tanh")  # type: ignore[arg-type]


@pytest.mark.parametrize("identity", [False, True])
def test_frozen_uniform_has_no_architecture_parameters(identity: bool) -> None:
    scheme = create_scheme("soft_ordering_uniform", dense_core(), 3, options={"identity": identity})
    assert isinstance(scheme, SoftOrdering)
    n_candidates = DEPTH + int(identity)
    assert scheme.architecture_parameters() == []
    assert all(p is not scheme.logits for p in scheme.parameters())
    assert "logits" in dict(scheme.named_buffers())
    assert torch.equal(scheme.scales(), torch.full((3, n_candidates, DEPTH), 1.0 / n_candidates))
    assert scheme.learned_structure()["frozen"] is True
    # The ablation is exactly the mean of the candidates at every depth.
    integer_valued(scheme.bank)
    x = torch.randn(3, BATCH, WIDTH)
    y = x
    for _ in range(DEPTH):
        cands = [scheme.bank.forward_one(j, y.reshape(-1, WIDTH)).view_as(y) for j in range(DEPTH)]
        y = torch.stack(cands + ([y] if identity else [])).mean(0)
    torch.testing.assert_close(scheme(x), y)


def test_identity_candidate_returns_the_input() -> None:
    scheme = create_scheme("soft_ordering", dense_core(dropout=0.5), 3, options={"identity": True})
    assert isinstance(scheme, SoftOrdering)
    assert scheme.logits.shape == (3, DEPTH + 1, DEPTH)
    assert scheme.learned_structure()["candidates"] == ["W1", "W2", "W3", "W4", "I"]
    set_logits(scheme, one_hot_logits([[DEPTH] * DEPTH] * 3, DEPTH + 1))
    x = torch.randn(3, BATCH, WIDTH)
    scheme.train()  # the identity has no dropout: even in training mode the input comes back
    assert torch.equal(scheme(x), x)
    assert torch.equal(scheme(x[[2, 0]], [2, 0]), x[[2, 0]])
    # Mixed: identity at depth 0 only, layers 0.. after: equals the parallel model over layers 1..3.
    scheme.eval()
    set_logits(scheme, one_hot_logits([[DEPTH, 1, 2, 3]] * 3, DEPTH + 1))
    y = x
    for j in (1, 2, 3):
        y = scheme.bank.forward_one(j, y.reshape(-1, WIDTH)).view_as(x)
    torch.testing.assert_close(scheme(x), y)


def test_dropout_applies_in_training_only() -> None:
    torch.manual_seed(0)
    scheme = create_scheme("soft_ordering", dense_core(dropout=0.5), 2)
    x = torch.randn(2, 64, WIDTH)
    scheme.eval()
    y_eval = scheme(x)
    scheme.train()
    y1, y2 = scheme(x), scheme(x)
    assert not torch.equal(y1, y2)
    assert not torch.equal(y1, y_eval)
    torch.manual_seed(3)
    a = scheme(x)
    torch.manual_seed(3)
    assert torch.equal(a, scheme(x))  # dropout draws from the global generator: seeded, reproducible


@pytest.mark.parametrize(("n_tasks", "tasks"), [(3, None), (7, [2, 0])])
@pytest.mark.parametrize("p", [0.5, 0.8])
def test_training_with_dropout_equals_eq7_loop_with_the_same_masks(n_tasks: int, tasks: list[int] | None,
                                                                   p: float) -> None:
    """The fused ReLU-dropout-mix path (training, dropout > 0): forward and every gradient equal
    Eq. 7 with each (task, layer, depth) output dropped by the masks the scheme drew."""
    from sharewise.components.dropout import dropout_mask

    scheme = random_soft(n_tasks, seed=n_tasks)
    scheme.dropout = p
    scheme.train()
    assert scheme._fused_relu_dropout()
    ids = tasks or list(range(n_tasks))
    x = torch.randn(len(ids), BATCH, WIDTH)
    torch.manual_seed(11)
    y = scheme(x, tasks)
    torch.manual_seed(11)  # the same masks, in the scheme's order: one per depth, [T'*B, L, W]
    masks = [dropout_mask((len(ids) * BATCH, DEPTH, WIDTH), p, torch.float32) for _ in range(DEPTH)]
    outs = []
    for i, t in enumerate(ids):
        h = x[i]
        for k in range(DEPTH):
            keep, scale = masks[k]
            keep = keep.view(len(ids), BATCH, DEPTH, WIDTH)[i]
            s = torch.softmax(scheme.logits[t, :, k], dim=0)
            h = sum(s[j] * torch.relu(h @ scheme.bank.layer_weight(j)[0] + scheme.bank.layer_weight(j)[1])
                    * keep[:, j] * scale for j in range(DEPTH))
        outs.append(h)
    ref = torch.stack(outs)
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-6)
    assert all(0 < float(keep.mean()) < 1 for keep, _ in masks)  # the masks really drop
    torch.manual_seed(11)
    assert not torch.allclose(scheme.eval()(x, tasks), y)  # ... and evaluation does not
    scheme.train()
    g = torch.randn_like(y)
    params = list(scheme.parameters())
    for a, b in zip(torch.autograd.grad((y * g).sum(), params), torch.autograd.grad((ref * g).sum(), params)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_fused_training_path_under_bf16_autocast_gives_float32_gradients() -> None:
    scheme = random_soft(3, seed=4)
    scheme.dropout = 0.5
    scheme.train()
    x = torch.randn(3, BATCH, WIDTH)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = scheme(x)
    assert y.dtype == torch.bfloat16
    y.float().sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in scheme.parameters())
    assert scheme.logits.grad.abs().sum() > 0


def test_every_parameter_gets_a_gradient_including_logits() -> None:
    scheme = random_soft(3, identity=True)
    scheme.train()
    y = scheme(torch.randn(3, BATCH, WIDTH))
    (y * torch.randn_like(y)).sum().backward()
    for name, p in scheme.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert (scheme.logits.grad != 0).all()  # every (task, candidate, depth) scale is learned


def test_learned_structure_reports_scales() -> None:
    scheme = random_soft(2)
    info = scheme.learned_structure()
    assert info["scale_fn"] == "softmax" and info["frozen"] is False
    torch.testing.assert_close(torch.tensor(info["scales"]), scheme.scales().detach())


# -- the fast dropout ---------------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.2, 0.25, 0.5, 0.75, 0.8])
def test_fast_dropout_keeps_1_minus_p_and_is_unbiased(p: float) -> None:
    from sharewise.components.dropout import packed_dropout as _dropout

    torch.manual_seed(0)
    x = torch.ones(400, 1000, requires_grad=True)
    y = _dropout(x, p, True)
    kept = y != 0
    scale = y[kept].unique()
    assert scale.numel() == 1  # every kept element is scaled alike ...
    dropped = round(p * 65536)
    assert scale.item() == pytest.approx(65536 / (65536 - dropped), rel=1e-7)  # ... by 1 / keep prob.
    assert abs(scale.item() - 1 / (1 - p)) < 1e-4
    frac = kept.float().mean().item()
    assert abs(frac - (1 - p)) < 5 * (p * (1 - p) / x.numel()) ** 0.5  # 5 sigma
    # Rows and columns are not correlated (the four 16-bit draws of one 64-bit word are independent).
    assert kept.float().mean(0).std().item() < 5 * (p * (1 - p) / 400) ** 0.5
    (g,) = torch.autograd.grad(y.sum(), x)
    assert torch.equal(g, y.detach())  # gradient = mask * scale
    torch.manual_seed(0)
    assert torch.equal(_dropout(x, p, True), y)  # reproducible from the global seed


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fast_dropout_mask_equals_the_boolean_mask(dtype: torch.dtype) -> None:
    """The mask written as 1.0/0.0 by the comparison (issue 15) is the bool mask of the same bits."""
    from sharewise.components.dropout import packed_dropout as _dropout

    x = torch.randn(37, 11).to(dtype)
    torch.manual_seed(3)
    y = _dropout(x, 0.3, True)
    torch.manual_seed(3)
    dropped = round(0.3 * 65536)
    bits = torch.empty((x.numel() + 3) // 4, dtype=torch.int64).random_(-(2**63), 2**63 - 1)
    keep = (bits.view(torch.int16)[:x.numel()].view(x.shape) >= dropped - 32768).to(dtype)
    assert y.dtype == dtype and torch.equal(y, x * keep.mul_(65536.0 / (65536 - dropped)))


def test_fast_dropout_draws_the_fewest_bits_that_give_p_exactly() -> None:
    """p = 0.5 uses one random bit per element, 0.25 / 0.75 two, 0.8 the 16-bit lanes."""
    from sharewise.components.dropout import _lane_bits, dropout_mask

    assert [_lane_bits(p) for p in (0.5, 0.25, 0.75, 0.125, 0.8, 0.2)] == [1, 2, 2, 4, None, None]
    torch.manual_seed(3)
    state = torch.get_rng_state()
    keep, scale = dropout_mask((1000, 64), 0.5, torch.float32)
    assert scale == 2.0 and set(keep.unique().tolist()) == {0.0, 1.0}
    torch.set_rng_state(state)
    words = torch.empty(1000, dtype=torch.int64).random_(-(2**63), None)  # 64,000 bits = 1000 words
    bits = (words.view(torch.uint8).long().unsqueeze(1) >> torch.arange(8)) & 1
    assert torch.equal(keep.flatten(), bits.flatten().float())  # bit i of the stream keeps element i


def test_fast_dropout_edge_cases() -> None:
    from sharewise.components.dropout import packed_dropout as _dropout

    x = torch.randn(3, 5)
    assert _dropout(x, 0.5, False) is x and _dropout(x, 0.0, True) is x
    assert torch.equal(_dropout(x, 1.0, True), torch.zeros(3, 5))
    assert _dropout(torch.randn(7), 0.5, True).shape == (7,)  # numel not a multiple of 4
    strided = torch.randn(4, 6).t()  # non-contiguous input keeps its values where kept
    y = _dropout(strided, 0.5, True)
    kept = y != 0
    torch.testing.assert_close(y[kept], strided[kept] * 2.0)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_conv_outputs_mix_as_rows_in_their_own_layout(layout: torch.memory_format) -> None:
    from sharewise.sharing.soft_ordering import _images_as_rows, _rows_as_images

    images = [torch.randn(6, 3, 4, 5).contiguous(memory_format=layout) for _ in range(2)]
    outs = torch.stack(images)  # [L, N, C, H, W], as the bank returns them
    rows, shape = _images_as_rows(outs)
    assert rows.shape == (2, 6, 60) and rows.data_ptr() == outs.data_ptr()  # a view, no copy
    back = _rows_as_images(rows[1].reshape(2, -1), 2, 3, shape)  # T' = 2 tasks of B = 3 images
    assert torch.equal(back, images[1].view(2, 3, 3, 4, 5)) and back.data_ptr() == rows[1].data_ptr()
    assert _images_as_rows(outs[:, :, :, ::2]) is None  # strided images are not dense blocks


def test_conv_soft_ordering_dropout_on_rows_is_inverted_dropout() -> None:
    # The rows path applies dropout to each image's memory: over many draws the mean output of
    # one depth equals the eval-mode output (E[mask] / keep = 1), and draws differ.
    torch.manual_seed(1)
    core = CoreSpec(make_bank=lambda n: ModuleLayerBank([ConvPoolLayer(3, pool=False) for _ in range(n)]),
                    depth=1, feature_shape=(3, 8, 8), dropout=0.5)
    scheme = create_scheme("soft_ordering", core, 2)
    x = torch.rand(2, 16, 3, 8, 8)
    scheme.eval()
    want = scheme(x)
    scheme.train()
    draws = torch.stack([scheme(x) for _ in range(400)])
    assert not torch.equal(draws[0], draws[1])
    torch.testing.assert_close(draws.mean(), want.mean(), rtol=0.01, atol=0)
    torch.testing.assert_close(draws.mean(0), want, rtol=0.3, atol=0.02)
    draws.sum().backward()
    assert scheme.logits.grad is not None and torch.isfinite(scheme.logits.grad).all()


def test_mix_layers_is_the_per_task_weighted_sum_over_the_layer_axis() -> None:
    from sharewise.sharing._soft_mix import mix_layers

    torch.manual_seed(0)
    h, s = torch.randn(3, 5, 4, 2, 6), torch.randn(3, 4)  # [T, B, J, *f] with two feature axes
    reference = torch.einsum("tbjxy,tj->tbxy", h, s)
    torch.testing.assert_close(mix_layers(h, s), reference)
    h.requires_grad_(), s.requires_grad_()
    g = torch.randn(3, 5, 2, 6)
    ours = torch.autograd.grad(mix_layers(h, s), (h, s), g)
    theirs = torch.autograd.grad(torch.einsum("tbjxy,tj->tbxy", h, s), (h, s), g)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b)
