"""Layer banks: the fused access patterns equal calling one layer at a time."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from sharewise.components.layer_bank import DenseLayerBank, ModuleLayerBank, activation_fn
from sharewise.errors import ConfigError


def dense_bank(n_layers: int = 4, width: int = 5, activation: str = "relu", in_width: int | None = None) -> DenseLayerBank:
    torch.manual_seed(0)
    bank = DenseLayerBank(n_layers, width, activation, in_width=in_width)
    with torch.no_grad():
        bank.bias.normal_()
    return bank


def affine(bank: DenseLayerBank, j: int, x: Tensor) -> Tensor:
    w, b = bank.layer_weight(j)  # [in, out], [out]
    return x @ w + b


@pytest.mark.parametrize("activation", ["relu", "linear", "tanh", "sigmoid"])
def test_forward_one_is_the_affine_map_and_activation(activation: str) -> None:
    bank = dense_bank(activation=activation)
    x = torch.randn(7, 5)
    for j in range(bank.n_layers):
        torch.testing.assert_close(bank.forward_one(j, x), activation_fn(activation)(affine(bank, j, x)))


def test_forward_all_equals_forward_one_for_every_layer() -> None:
    bank = dense_bank(in_width=3)
    x = torch.randn(9, 3)
    y = bank.forward_all(x)
    assert y.shape == (4, 9, 5)
    for j in range(4):
        torch.testing.assert_close(y[j], bank.forward_one(j, x))


def test_dense_forward_all_is_a_view_of_rows_holding_every_layer() -> None:
    """``layer_rows``: forward_all's [L, N, out] is the transpose of contiguous [N, L, out] rows
    (what soft ordering mixes without a copy), each layer's block equal to forward_one."""
    bank = dense_bank(in_width=3)
    assert bank.layer_rows
    x = torch.randn(9, 3)
    rows = bank.forward_all(x).transpose(0, 1)
    assert rows.shape == (9, 4, 5) and rows.is_contiguous()
    for j in range(4):
        torch.testing.assert_close(rows[:, j], bank.forward_one(j, x))
    pre = bank.linear_all(x)
    torch.testing.assert_close(torch.relu(pre), rows)
    g = torch.randn(9, 4, 5)
    grads = torch.autograd.grad((pre * g).sum(), [bank.weight, bank.bias])
    ref = torch.autograd.grad(sum((x @ bank.layer_weight(j)[0] + bank.layer_weight(j)[1]).mul(g[:, j]).sum()
                                  for j in range(4)), [bank.weight, bank.bias])
    for a, b in zip(grads, ref):
        torch.testing.assert_close(a, b)
    assert not ModuleLayerBank([nn.Linear(3, 3), nn.Linear(3, 3)]).layer_rows


@pytest.mark.parametrize("p", [0.5, 0.8, 0.0, 1.0])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_forward_chain_equals_forward_one_and_dropout_in_a_loop_bit_for_bit(p: float, activation: str) -> None:
    """The dense chain (parallel ordering's path: unbind-cut weights, one draw for every layer's
    mask, in-place ReLU) has the loop's outputs and gradients exactly, with the masks that
    ``packed_dropout`` draws layer by layer from the same seed; layers it skips get zero gradient."""
    from sharewise.components.dropout import packed_dropout
    from sharewise.components.layer_bank import LayerBank

    bank = dense_bank(n_layers=5, width=6, activation=activation)
    x = torch.randn(40, 6)
    torch.manual_seed(1)
    ref = x
    for j in [3, 0, 1, 2]:
        ref = packed_dropout(bank.forward_one(j, ref), p, True)
    ref_next = torch.rand(2)  # the chain must leave the generator where the loop left it
    results = [(ref, *torch.autograd.grad((ref * ref).sum(), [bank.weight, bank.bias]), ref_next)]
    for chain in (LayerBank.forward_chain, DenseLayerBank.forward_chain):
        torch.manual_seed(1)  # the same dropout masks
        y = chain(bank, x, [3, 0, 1, 2], p, True)
        results.append((y, *torch.autograd.grad((y * y).sum(), [bank.weight, bank.bias]), torch.rand(2)))
    for res in results[1:]:
        for a, b in zip(results[0], res):
            assert torch.equal(a, b)
    if 0 < p < 1:
        assert 0 < float((results[0][0] == 0).float().mean()) < 1  # the masks really dropped
        assert not torch.equal(DenseLayerBank.forward_chain(bank, x, [3, 0, 1, 2], p, False), results[0][0])
    assert torch.equal(results[2][1][:, 4], torch.zeros(6, 6)) and torch.equal(results[2][2][4], torch.zeros(6))
    module_bank = ModuleLayerBank([nn.Linear(6, 6), nn.Linear(6, 6)])  # the loop, for other banks
    torch.testing.assert_close(module_bank.forward_chain(x, [1, 0], 0.0, True),
                               module_bank.forward_one(0, module_bank.forward_one(1, x)))


def test_forward_selected_equals_forward_one_per_task_and_gradients() -> None:
    bank = dense_bank(n_layers=4)
    layer_of_task = [2, 0, 2, 3, 1]
    x = torch.randn(5, 6, 5)
    y = bank.forward_selected(x, layer_of_task)
    ref = torch.stack([bank.forward_one(j, x[t]) for t, j in enumerate(layer_of_task)])
    torch.testing.assert_close(y, ref)
    g = torch.randn_like(y)
    grads = torch.autograd.grad((y * g).sum(), [bank.weight, bank.bias])
    grads_ref = torch.autograd.grad((ref * g).sum(), [bank.weight, bank.bias])
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a, b)
    assert bank.forward_selected(x, layer_of_task) is not y  # cached index, fresh result
    torch.testing.assert_close(bank.forward_selected(x, layer_of_task), y)


def test_layer_weight_is_a_view_of_the_fused_tensor() -> None:
    bank = dense_bank()
    w, b = bank.layer_weight(2)
    assert w.shape == (5, 5) and b.shape == (5,)
    assert w.data_ptr() == bank.weight[:, 2, :].data_ptr()
    with torch.no_grad():
        bank.weight[:, 2, :].fill_(1.5)
    assert torch.equal(bank.layer_weight(2)[0], torch.full((5, 5), 1.5))


def test_glorot_uniform_init_and_zero_bias() -> None:
    torch.manual_seed(1)
    bank = DenseLayerBank(8, 64, in_width=32)
    bound = math.sqrt(6.0 / (32 + 64))
    assert bank.weight.shape == (32, 8, 64)
    assert bank.weight.abs().max() <= bound
    assert bank.weight.abs().max() > 0.95 * bound
    assert torch.equal(bank.bias, torch.zeros(8, 64))


def test_unknown_activation_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="'gelu'.*'relu'"):
        DenseLayerBank(2, 4, activation="gelu")


class Counting(nn.Module):
    """A layer that records the batch size of every call."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(scale))
        self.calls: list[int] = []

    def forward(self, x: Tensor) -> Tensor:
        self.calls.append(x.shape[0])
        return x * self.scale


def test_module_bank_forward_selected_groups_tasks_by_layer() -> None:
    layers = [Counting(float(j + 1)) for j in range(3)]
    bank = ModuleLayerBank(layers)
    x = torch.randn(5, 4, 2)
    layer_of_task = [1, 0, 1, 1, 2]
    y = bank.forward_selected(x, layer_of_task)
    ref = torch.stack([x[t] * (layer_of_task[t] + 1) for t in range(5)])
    assert torch.equal(y, ref)
    # One call per layer on the stacked batch of the tasks that use it (never one per task).
    assert [layer.calls for layer in layers] == [[4], [12], [4]]
    for layer in layers:
        layer.calls.clear()
    y = bank.forward_selected(x, [2] * 5)  # one group: one call on all tasks
    assert torch.equal(y, x * 3)
    assert [layer.calls for layer in layers] == [[], [], [20]]
    y.sum().backward()
    assert layers[0].scale.grad is None and layers[2].scale.grad is not None


def test_module_bank_forward_all_and_one() -> None:
    layers = [nn.Linear(3, 3) for _ in range(2)]
    bank = ModuleLayerBank(layers)
    x = torch.randn(4, 3)
    y = bank.forward_all(x)
    assert y.shape == (2, 4, 3)
    for j in range(2):
        torch.testing.assert_close(y[j], layers[j](x))
        torch.testing.assert_close(bank.forward_one(j, x), layers[j](x))
    assert bank.n_layers == 2
