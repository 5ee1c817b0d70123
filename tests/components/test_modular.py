"""Modular layers, fused component banks and the experiment networks (Maziarz et al.)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sharewise.components.fused_banks import ConvBank, MLPBank
from sharewise.components.layer_bank import DenseLayerBank, ModuleLayerBank
from sharewise.components.modular import ModularLayer, ModularNetwork, loop_forward, mix
from sharewise.components.modular_sets import build_modular_network
from sharewise.errors import ConfigError, ShapeError


def test_mix_is_the_mean_of_active_components_hand_computed() -> None:
    outs = torch.tensor([[[1.0, 10.0], [4.0, 40.0]],
                         [[2.0, 20.0], [5.0, 50.0]],
                         [[3.0, 30.0], [6.0, 60.0]]])  # [C=3, T=2, M=2]
    z = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    y = mix(outs, z)
    assert torch.equal(y, torch.tensor([[2.0, 20.0], [5.0, 50.0]]))  # (1+3)/2, (10+30)/2; 5/1


@pytest.mark.parametrize(("z", "value", "grad"), [
    ([1.0, 1.0, 0.0], 1.5, [-0.25, 0.25, 0.75]),  # S = 2: o_c / S - (z.o) / S^2
    ([1.0, 0.0, 0.0], 1.0, [0.0, 1.0, 2.0]),  # S = 1: the gradient passes the max(S, 1)
    ([0.0, 0.0, 0.0], 0.0, [1.0, 2.0, 3.0]),  # S = 0: output 0, normaliser constant 1
])
def test_mix_gradient_flows_through_the_normaliser(z: list[float], value: float, grad: list[float]) -> None:
    outs = torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1)  # [C, T=1, M=1]
    zt = torch.tensor([z], requires_grad=True)
    y = mix(outs, zt)
    y.sum().backward()
    assert y.item() == value
    assert torch.allclose(zt.grad, torch.tensor([grad]))


def test_all_zero_allocation_gives_zero_output() -> None:
    net = build_modular_network("mnist4", (1, 28, 28))
    z = [torch.zeros(2, 4) for _ in range(3)]
    assert torch.equal(net(torch.randn(2, 3, 1, 28, 28), z), torch.zeros(2, 3, 4, 3, 3))


def test_mismatched_components_raise_shape_error_naming_them() -> None:
    bank = ModuleLayerBank([nn.Linear(8, 8), nn.Linear(8, 5)])
    with pytest.raises(ShapeError, match=r"c0: \[8\], c1: \[5\]"):
        ModularLayer(bank, (8,))
    comps = [nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, stride=2, padding=1)]
    with pytest.raises(ShapeError, match=r"same: \[4, 9, 9\], strided: \[4, 5, 5\]"):
        ModularLayer(ModuleLayerBank(comps), (4, 9, 9), ["same", "strided"])


def test_conv_bank_equals_nn_conv2d_for_both_impls() -> None:
    torch.manual_seed(0)
    x = torch.randn(5, 3, 12, 12, requires_grad=True)
    for impl in ("conv", "unfold"):
        bank = ConvBank(2, 3, 4, 3, padding=1, impl=impl)
        refs = []
        for c in range(2):
            conv = nn.Conv2d(3, 4, 3, padding=1)
            conv.weight.data.copy_(bank.weight.data[4 * c:4 * c + 4])
            conv.bias.data.copy_(bank.bias.data[4 * c:4 * c + 4])
            refs.append(conv)
        out = bank.forward_all(x)  # [C, N, 4, 12, 12]
        ref = torch.stack([conv(x).relu() for conv in refs])
        assert torch.allclose(out, ref, atol=1e-6)
        g = torch.randn_like(ref)
        gx, gw = torch.autograd.grad((out * g).sum(), [x, bank.weight])
        rx, *rw = torch.autograd.grad((ref * g).sum(), [x] + [conv.weight for conv in refs])
        assert torch.allclose(gx, rx, atol=1e-5)
        assert torch.allclose(gw, torch.cat(rw), atol=1e-5)
        assert torch.allclose(bank.forward_one(1, x), ref[1], atol=1e-6)


def test_mlp_bank_forward_all_equals_forward_one() -> None:
    bank = MLPBank(4, 6, 16, 1, depth=3)
    x = torch.randn(7, 6)
    assert torch.allclose(bank.forward_all(x), torch.stack([bank.forward_one(c, x) for c in range(4)]), atol=1e-6)


def test_network_shapes_follow_the_paper() -> None:
    assert build_modular_network("mnist4", (1, 28, 28)).out_shape == (4, 3, 3)  # 28-24-12-10-5-3
    omni = build_modular_network("omniglot20", (1, 105, 105))
    assert omni.out_shape == (48, 4, 4)  # strides in layers 0, 1, 3, 4, 6: 105-53-27-27-14-7-7-4-4
    assert omni.components_per_layer == [7] * 8
    assert omni.layers[0].names[-1] == "identity"
    assert isinstance(omni.layers[0].bank.layers[-1], nn.Conv2d)  # strided identity = 1x1 conv
    assert not isinstance(omni.layers[2].bank.layers[-1], nn.Conv2d)
    assert build_modular_network("mlp", (128,)).out_shape == (1,)
    assert build_modular_network("transfer", (128,)).out_shape == (4,)


def test_unknown_network_or_option_raises() -> None:
    with pytest.raises(ConfigError, match="'resnet'"):
        build_modular_network("resnet", (8,))
    with pytest.raises(ConfigError, match="widht"):
        build_modular_network("mlp", (8,), widht=3)
    with pytest.raises(ConfigError, match=r"got input shape \[1, 28, 28\]"):
        build_modular_network("mlp", (1, 28, 28))


def _dense_core_network() -> ModularNetwork:
    layers = [ModularLayer(DenseLayerBank(3, 6), (6,)), ModularLayer(DenseLayerBank(3, 6), (6,))]
    return ModularNetwork(layers, (6,))


NETWORKS = {
    "mlp": lambda: build_modular_network("mlp", (6,), n_layers=2, out_features=6),
    "transfer": lambda: build_modular_network("transfer", (6,)),
    "mnist4": lambda: build_modular_network("mnist4", (1, 28, 28)),
    "mnist4_conv": lambda: build_modular_network("mnist4", (1, 28, 28), impl="conv"),
    "mnist4_unfold": lambda: build_modular_network("mnist4", (1, 28, 28), impl="unfold"),
    "mnist4_per_layer": lambda: build_modular_network("mnist4", (1, 28, 28), impl=["unfold", "conv", "unfold"]),
    "omniglot20": lambda: build_modular_network("omniglot20", (1, 24, 24), channels=8, groups=2, n_layers=3),
    "dense_core": _dense_core_network,
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
@pytest.mark.parametrize(("execution", "no_grad"), [("stacked", False), ("stacked", True),
                                                    ("per_task", False), ("per_task", True)])
def test_every_execution_path_equals_the_reference_loop(name: str, execution: str, no_grad: bool) -> None:
    """Forward and gradients (parameters, input, allocation) equal the task x component loop."""
    torch.manual_seed(1)
    net = NETWORKS[name]()
    t = 3
    x = torch.randn(t, 4, *net.in_shape, requires_grad=True)
    # Column patterns: all on, all off, and mixed, so the split path of inactive_no_grad runs.
    z = [torch.tensor([[1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0][:c] for _ in range(t)]) for c in net.components_per_layer]
    for zl in z:
        zl[1, :] = 1.0 - zl[1, :]
        zl[2, 0] = 0.0
        zl.requires_grad_(True)
    ref = loop_forward(net, x, z)
    out = net(x, z, execution=execution, inactive_no_grad=no_grad)
    assert torch.allclose(out, ref, atol=1e-5, rtol=1e-4)
    g = torch.randn_like(ref)
    params = [x, *z, *net.parameters()]
    got = torch.autograd.grad((out * g).sum(), params, allow_unused=True)
    want = torch.autograd.grad((ref * g).sum(), params, allow_unused=True)
    for a, b in zip(got, want):
        a = torch.zeros_like(b) if a is None else a
        b = torch.zeros_like(a) if b is None else b
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-3)


def test_inactive_no_grad_skips_the_backward_of_inactive_components() -> None:
    net = build_modular_network("transfer", (6,))
    z = [torch.tensor([[1.0, 0.0, 0.0, 1.0]], requires_grad=True)]
    net(torch.randn(1, 2, 6), z, inactive_no_grad=True).sum().backward()
    grads = [net.layers[0].bank.layers[c][0].weight.grad for c in range(4)]
    assert grads[1] is None and grads[2] is None  # never entered autograd
    assert grads[0] is not None and grads[3] is not None
    assert z[0].grad is not None and bool((z[0].grad != 0).all())  # every logit still gets a gradient


def test_auto_execution_heuristic() -> None:
    assert build_modular_network("mnist4", (1, 28, 28)).resolve_execution("auto", 4, 16) == "stacked"
    omni = build_modular_network("omniglot20", (1, 105, 105))
    assert omni.resolve_execution("auto", 20, 16) == "per_task"
    with pytest.raises(ConfigError, match="'chunky'"):
        omni.resolve_execution("chunky", 1, 1)


def test_clusters_network_follows_sec_v_c() -> None:
    """3 modular layers of 8 conv3x3 + 8 conv5x5 components, 8 channels, stride 2 each."""
    from sharewise.components.modular_sets import build_modular_network
    from sharewise.errors import ConfigError

    net = build_modular_network("clusters", (1, 28, 28))
    assert net.components_per_layer == [16, 16, 16]
    assert [layer.out_shape for layer in net.layers] == [(8, 14, 14), (8, 7, 7), (8, 4, 4)]
    bank = net.layers[0].bank
    assert bank.kernels == [3] * 8 + [5] * 8 and bank.stride == 2 and bank.channels == 8
    assert bank.weight_3.shape == (64, 8, 3, 3) and bank.weight_5.shape == (64, 8, 5, 5)  # 8 components each
    exported = [bank.export_layer(c)[0] for c in range(16)]
    assert [m.kernel_size for m in exported] == [(3, 3)] * 8 + [(5, 5)] * 8
    assert all(m.stride == (2, 2) for m in exported)
    with pytest.raises(ConfigError, match="channels=9, groups=2"):
        build_modular_network("clusters", (1, 28, 28), channels=9)
