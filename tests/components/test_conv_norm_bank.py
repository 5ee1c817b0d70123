"""ConvNormBank (the clusters network's components): the fused path equals one nn.Conv2d +
nn.GroupNorm + ReLU per component, forward and backward, for kernels in any order."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sharewise.components.fused_banks import ConvNormBank
from sharewise.errors import ConfigError


def _reference_modules(bank: ConvNormBank) -> list[nn.Sequential]:
    """One plain Conv2d + GroupNorm + ReLU per component, its parameters read by hand from the
    fused tensors (component c is the i-th of its kernel size: rows i*ch:(i+1)*ch)."""
    ch, mods = bank.channels, []
    for c, k in enumerate(bank.kernels):
        i = [d for d, kk in enumerate(bank.kernels) if kk == k].index(c)
        conv = nn.Conv2d(ch, ch, k, stride=bank.stride, padding=k // 2).double()
        norm = nn.GroupNorm(bank.groups, ch).double()
        with torch.no_grad():
            conv.weight.copy_(getattr(bank, f"weight_{k}")[i * ch:(i + 1) * ch])
            conv.bias.copy_(getattr(bank, f"bias_{k}")[i * ch:(i + 1) * ch])
            norm.weight.copy_(getattr(bank, f"norm_weight_{k}")[i * ch:(i + 1) * ch])
            norm.bias.copy_(getattr(bank, f"norm_bias_{k}")[i * ch:(i + 1) * ch])
        mods.append(nn.Sequential(conv, norm, nn.ReLU()))
    return mods


def _randomise(bank: ConvNormBank) -> None:
    """Non-trivial GroupNorm scales and shifts (the init's 1 and 0 would hide a mix-up)."""
    with torch.no_grad():
        for name, p in bank.named_parameters():
            if name.startswith("norm_"):
                p.copy_(torch.randn_like(p))


@pytest.mark.parametrize("kernels", [(3, 3, 5, 5), (5, 3, 1, 3, 5)])
def test_fused_equals_one_conv_and_groupnorm_per_component(kernels: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    bank = ConvNormBank(kernels, channels=4, stride=2, groups=2).double()
    _randomise(bank)
    ref = _reference_modules(bank)
    x = torch.randn(3, 4, 9, 9, dtype=torch.float64, requires_grad=True)
    got = bank.forward_all(x)  # [C, N, ch, 5, 5]
    want = torch.stack([m(x) for m in ref])
    assert got.shape == (len(kernels), 3, 4, 5, 5)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    for j in range(len(kernels)):
        torch.testing.assert_close(bank.forward_one(j, x), want[j], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(bank.export_layer(j).double()(x), want[j], rtol=1e-10, atol=1e-12)
    # gradients: the fused parameters' slices equal the reference modules' gradients
    weights = torch.randn_like(want)
    gx_got = torch.autograd.grad((got * weights).sum(), [x, *bank.parameters()])
    gx_want = torch.autograd.grad((want * weights).sum(), [x, *[p for m in ref for p in m.parameters()]])
    torch.testing.assert_close(gx_got[0], gx_want[0], rtol=1e-10, atol=1e-12)
    by_name = dict(zip([n for n, _ in bank.named_parameters()], gx_got[1:]))
    ch = bank.channels
    for c, k in enumerate(kernels):
        i = [d for d, kk in enumerate(kernels) if kk == k].index(c)
        ref_grads = gx_want[1 + 4 * c:1 + 4 * (c + 1)]
        for name, g_ref in zip(("weight", "bias", "norm_weight", "norm_bias"), ref_grads):
            torch.testing.assert_close(by_name[f"{name}_{k}"][i * ch:(i + 1) * ch], g_ref, rtol=1e-10, atol=1e-12)


def test_layer_uses_cover_exactly_the_rows_a_component_trains() -> None:
    torch.manual_seed(1)
    bank = ConvNormBank((3, 5, 3), channels=2, groups=1)
    x = torch.randn(2, 2, 6, 6)
    users = torch.tensor([[False, False, True]])  # one task using component 2 (the second 3x3)
    bank.forward_one(2, x).square().sum().backward()
    uses = {id(u.param): u for u in bank.layer_uses(users)}
    for name, param in bank.named_parameters():
        mask = uses[id(param)].mask()[0]
        expected = torch.zeros_like(mask)
        if name.endswith("_3"):
            expected[2:4] = True  # the second 3x3 component's two channels
        assert torch.equal(mask, expected), name
        grad = torch.zeros_like(param) if param.grad is None else param.grad  # size 5: never entered autograd
        assert not bool((grad[~mask] != 0).any()), name  # nothing outside the declared rows moves


def test_load_layer_copies_a_component_of_the_same_kernel_size() -> None:
    torch.manual_seed(2)
    a, b = ConvNormBank((3, 5, 3), channels=2, groups=1), ConvNormBank((3, 5, 3), channels=2, groups=1)
    _randomise(a)
    x = torch.randn(2, 2, 5, 5)
    b.load_layer(0, a.state_dict(), 2)
    torch.testing.assert_close(b.forward_one(0, x), a.forward_one(2, x))
    with pytest.raises(ConfigError, match="kernel sizes differ"):
        b.load_layer(1, a.state_dict(), 0)


def test_bad_settings_name_the_fix() -> None:
    with pytest.raises(ConfigError, match="odd kernel sizes"):
        ConvNormBank((3, 4), channels=4)
    with pytest.raises(ConfigError, match="channels=6, groups=4"):
        ConvNormBank((3,), channels=6, groups=4)
    with pytest.raises(ConfigError, match="at least one component"):
        ConvNormBank((), channels=4)


def test_kernel_order_is_derived_not_saved() -> None:
    """The fused-to-component order of ungrouped kernels follows the module (a buffer) but is not
    in the state dict: it is derived from `kernels`, so checkpoints hold only the parameters."""
    bank = ConvNormBank((5, 3, 5), channels=2, groups=1)
    assert bank._order is not None and [n for n, _ in bank.named_buffers()] == ["_order"]
    assert sorted(bank.state_dict()) == sorted(n for n, _ in bank.named_parameters())
    again = ConvNormBank((5, 3, 5), channels=2, groups=1)
    again.load_state_dict(bank.state_dict())  # strict: nothing missing, nothing unexpected
    x = torch.randn(2, 2, 6, 6)
    torch.testing.assert_close(again.forward_all(x), bank.forward_all(x))
