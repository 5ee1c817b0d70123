"""The fused im2col path of ConvBank (impl='unfold'): exact against F.conv2d and nn.AvgPool2d."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sharewise.components.conv_mix import StackedAvgPool2d, from_stacked_layout, to_stacked_layout
from sharewise.components.fused_banks import ConvBank
from sharewise.components.modular import ModularNetwork, loop_forward
from sharewise.components.modular_sets import build_modular_network
from sharewise.errors import ConfigError


def _reference(bank: ConvBank, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """sum_c w[t, c] act(conv2d(x_t, W_c, b_c)), task by task with F.conv2d."""
    o, act = bank.out_channels, (torch.relu if bank.activation_name == "relu" else (lambda v: v))
    outs = []
    for t in range(x.shape[0]):
        y = 0.0
        for c in range(bank.n_layers):
            conv = F.conv2d(x[t], bank.weight[c * o:(c + 1) * o], bank.bias[c * o:(c + 1) * o], padding=bank.padding)
            y = y + w[t, c] * act(conv)
        outs.append(y)
    return torch.stack(outs)


@pytest.mark.parametrize("n_tasks", [1, 3])
@pytest.mark.parametrize("padding", [0, 1])
@pytest.mark.parametrize("activation", ["relu", "linear"])
def test_forward_mixed_equals_conv2d_forward_and_gradients(n_tasks: int, padding: int, activation: str) -> None:
    """Output and gradients (input, weights, bias, mixing weights) equal F.conv2d's in float64,
    on a non-square input with a non-contiguous layout."""
    torch.manual_seed(0)
    bank = ConvBank(3, 2, 4, 3, padding=padding, activation=activation, impl="unfold").double()
    assert bank.mixes_tasks
    x = torch.randn(n_tasks, 5, 2, 9, 8, dtype=torch.float64).transpose(3, 4).contiguous().transpose(3, 4)
    x.requires_grad_(True)
    w = torch.rand(n_tasks, 3, dtype=torch.float64, requires_grad=True)
    out = bank.forward_mixed(x, w)
    ref = _reference(bank, x, w)
    assert out.shape == ref.shape
    assert torch.allclose(out, ref, atol=1e-12)
    g = torch.randn_like(ref)
    params = [x, w, bank.weight, bank.bias]
    got = torch.autograd.grad((out * g).sum(), params)
    want = torch.autograd.grad((ref * g).sum(), params)
    for name, a, b in zip(["x", "w", "weight", "bias"], got, want):
        assert torch.allclose(a, b, atol=1e-11), name


def test_forward_mixed_float32_within_1e6_and_first_layer_needs_no_input_gradient() -> None:
    torch.manual_seed(1)
    bank = ConvBank(4, 1, 4, 5, impl="unfold")
    x = torch.rand(1, 16, 1, 28, 28)  # data: no gradient wanted
    w = torch.tensor([[0.5, 0.0, 0.5, 0.0]], requires_grad=True)
    out = bank.forward_mixed(x, w)
    ref = _reference(bank, x, w)
    assert (out - ref).abs().max() < 1e-6
    gw, gb = torch.autograd.grad(out.sum(), [bank.weight, bank.bias])
    rw, rb = torch.autograd.grad(ref.sum(), [bank.weight, bank.bias])
    assert (gw - rw).abs().max() < 1e-4 * rw.abs().max() and (gb - rb).abs().max() < 1e-4 * rb.abs().max()


def test_layout_round_trip_is_a_view() -> None:
    x = torch.randn(2, 3, 4, 5, 6)
    m = to_stacked_layout(x)
    assert m.shape == (4, 2, 5, 6, 3) and m.is_contiguous()
    assert torch.equal(from_stacked_layout(m), x)
    assert to_stacked_layout(from_stacked_layout(m)).data_ptr() == m.data_ptr()  # no copy


@pytest.mark.parametrize("layout", ["contiguous", "batch_innermost"])
def test_stacked_avg_pool_equals_avg_pool2d(layout: str) -> None:
    x = torch.randn(3, 4, 2, 10, 8, requires_grad=True)
    inp = x if layout == "contiguous" else from_stacked_layout(to_stacked_layout(x.detach()).requires_grad_(True))
    pool = StackedAvgPool2d(2)
    out = pool(inp)
    ref = F.avg_pool2d(inp.detach().reshape(12, 2, 10, 8), 2).view(3, 4, 2, 5, 4)
    assert torch.allclose(out, ref, atol=1e-7)
    if layout == "batch_innermost":
        assert out.permute(2, 0, 3, 4, 1).is_contiguous()  # the layout carries on to the next layer
    assert torch.allclose(pool(x[0]), nn.AvgPool2d(2)(x[0]))  # 4-D input: an exported network


def test_mnist4_impl_per_layer_and_errors() -> None:
    torch.manual_seed(2)
    nets = [build_modular_network("mnist4", (1, 28, 28), impl=impl) for impl in ("conv", ["unfold", "conv", "unfold"], None)]
    for net in nets[1:]:
        net.load_state_dict(nets[0].state_dict())  # the same parameters whatever the impl
    assert [layer.bank.impl for layer in nets[1].layers] == ["unfold", "conv", "unfold"]
    x = torch.randn(2, 6, 1, 28, 28)
    z = [torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0]]) for _ in range(3)]
    outs = [net(x, z) for net in nets]
    assert all(torch.allclose(o, outs[0], atol=1e-5) for o in outs[1:])
    with pytest.raises(ConfigError, match="one entry per modular layer"):
        build_modular_network("mnist4", (1, 28, 28), impl=["conv", "unfold"])
    with pytest.raises(ConfigError, match="'conv' or 'unfold'"):
        build_modular_network("mnist4", (1, 28, 28), impl="im2col")


def test_network_output_feeds_heads_in_any_layout() -> None:
    """The last layer's batch-innermost output is a [T', B, ...] view that reshapes like any tensor."""
    net = build_modular_network("mnist4", (1, 28, 28), impl="unfold")
    assert isinstance(net, ModularNetwork)
    y = net(torch.randn(3, 4, 1, 28, 28), [torch.ones(3, 4)] * 3)
    assert y.shape == (3, 4, 4, 3, 3)
    assert y.reshape(3, 4, -1).shape == (3, 4, 36)


def test_forward_mixed_under_bf16_autocast_runs_in_bf16_and_returns_float32_gradients() -> None:
    torch.manual_seed(3)
    bank = ConvBank(4, 2, 4, 3, impl="unfold")
    x = torch.randn(2, 6, 2, 12, 12, requires_grad=True)
    w = torch.rand(2, 4, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = bank.forward_mixed(x, w)
    assert out.dtype == torch.bfloat16
    ref = _reference(bank, x, w)
    assert (out.float() - ref).abs().max() < 0.05 * ref.abs().max()
    out.float().sum().backward()
    assert bank.weight.grad.dtype == torch.float32 and x.grad.dtype == torch.float32 and w.grad.dtype == torch.float32


@pytest.mark.parametrize("n_tasks", [1, 3])
@pytest.mark.parametrize("size", [10, 9])  # 9: the pooling drops a trailing row and column
def test_pooling_inside_the_op_equals_stacked_avg_pool(n_tasks: int, size: int) -> None:
    """forward_mixed(pool=2) = StackedAvgPool2d(2) after forward_mixed: values and gradients."""
    torch.manual_seed(4)
    bank = ConvBank(4, 3, 4, 3, impl="unfold")
    x = torch.randn(n_tasks, 5, 3, size, size, requires_grad=True)
    w = torch.tensor([[0.5, 0.0, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3, 0.0], [0.25] * 4][:n_tasks], requires_grad=True)
    out = bank.forward_mixed(x, w, pool=2)
    ref = StackedAvgPool2d(2)(bank.forward_mixed(x, w))
    assert out.shape == ref.shape == (n_tasks, 5, 4, (size - 2) // 2, (size - 2) // 2)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)  # the same avg_pool2d kernel on the same view
    g = torch.randn_like(ref)
    params = [x, w, bank.weight, bank.bias]
    for a, b in zip(torch.autograd.grad((out * g).sum(), params), torch.autograd.grad((ref * g).sum(), params)):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_fold_size_only_for_plain_non_overlapping_pooling() -> None:
    assert StackedAvgPool2d(2).fold_size == 2 and StackedAvgPool2d((3, 3)).fold_size == 3
    assert StackedAvgPool2d(2, stride=1).fold_size is None
    assert StackedAvgPool2d(2, padding=1).fold_size is None
    assert StackedAvgPool2d(2, ceil_mode=True).fold_size is None
    assert StackedAvgPool2d((2, 3)).fold_size is None


@pytest.mark.parametrize("n_tasks", [1, 2])
def test_network_as_one_chain_equals_layer_by_layer_and_the_loop(monkeypatch: pytest.MonkeyPatch, n_tasks: int) -> None:
    """The 4-MNISTs network runs as one op (conv_mix_chain, pooling folded in); the same output
    and gradients (input, parameters, allocation) as layer by layer with StackedAvgPool2d, and as
    the loop reference, to float rounding."""
    torch.manual_seed(5)
    net = build_modular_network("mnist4", (1, 28, 28))
    x = torch.randn(n_tasks, 6, 1, 28, 28, requires_grad=True)
    z = [(torch.rand(n_tasks, 4) > 0.4).float().requires_grad_(True) for _ in range(3)]
    params = [x, *z, *net.parameters()]
    calls = []
    real_chain = ConvBank.forward_chain
    monkeypatch.setattr(ConvBank, "forward_chain", staticmethod(lambda *a: calls.append(1) or real_chain(*a)))
    out = net(x, z)
    assert calls == [1] and out.grad_fn.next_functions[0][0].name() == "_ConvMixChainBackward"
    monkeypatch.setattr(ConvBank, "forward_chain", staticmethod(lambda *a: None))  # layer by layer
    ref = net(x, z)
    loop = loop_forward(net, x, z)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    torch.testing.assert_close(out, loop, rtol=1e-5, atol=1e-6)
    g = torch.randn_like(out)
    got = torch.autograd.grad((out * g).sum(), params)
    want = torch.autograd.grad((ref * g).sum(), params)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    for a, b in zip(got, torch.autograd.grad((loop * g).sum(), params)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_chain_without_input_gradient_and_its_fallbacks() -> None:
    """Data input (no gradient): every parameter still gets its gradient. Under autocast, or with a
    pooling that cannot fold, the network runs layer by layer."""
    torch.manual_seed(6)
    net = build_modular_network("mnist4", (1, 28, 28))
    x = torch.randn(1, 4, 1, 28, 28)
    z = [torch.ones(1, 4) for _ in range(3)]
    net(x, z).sum().backward()
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in net.parameters())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = net(x, z)
    assert y.dtype == torch.bfloat16 and y.grad_fn.name() != "_ConvMixChainBackward"
    net.post[0] = StackedAvgPool2d(2, stride=1)  # not foldable: 24 -> 23 -> 21 -> 10 -> 8, layer by layer
    y = net(x, z)
    assert y.shape == (1, 4, 4, 8, 8) and y.grad_fn.name() != "_ConvMixChainBackward"
