"""The one-node sampled mixing weights equal the reference (allocation + mix_weights per layer)."""

from __future__ import annotations

import copy

import pytest
import torch

from sharewise.components.modular import mix_weights
from sharewise.components.modular_sets import build_modular_network
from sharewise.sharing._gumbel import gumbel_noise, straight_through_sample
from sharewise.sharing._sampled_mix import sampled_mix_weights
from sharewise.sharing.gumbel_matrix import GumbelMatrix, _ModularScheme


def _reference(logits: list[torch.Tensor], ids: list[int], noise: torch.Tensor, tau: float):
    rows = [lg[ids] for lg in logits]
    flat = torch.cat([lg.reshape(-1, 2) for lg in rows])
    z = straight_through_sample(flat, noise, tau).split([r.shape[0] * r.shape[1] for r in rows])
    zs = [part.view(r.shape[:-1]) for part, r in zip(z, rows)]
    return zs, [mix_weights(a) for a in zs]


@pytest.mark.parametrize("ids", [[2], [0, 1, 2], [3, 1], [1, 1]])
def test_values_and_gradients_equal_the_reference(ids: list[int]) -> None:
    torch.manual_seed(0)
    # logits near 0 and small tau: some rows all off (sum 0), some with one component (sum 1)
    logits = [torch.randn(4, 4, 2, requires_grad=True) for _ in range(3)]
    noise = gumbel_noise((len(ids) * 12, 2), torch.Generator().manual_seed(1))
    tau = 0.7
    z_ref, w_ref = _reference(logits, ids, noise, tau)
    z, w = sampled_mix_weights(logits, ids, noise, tau)
    for a, b in zip(z, z_ref):
        assert torch.equal(a, b.detach()) and not a.requires_grad
    for a, b in zip(w, w_ref):
        assert torch.equal(a, b)
    cot = [torch.randn_like(a) for a in w]
    g = torch.autograd.grad(w, logits, cot)
    g_ref = torch.autograd.grad(w_ref, logits, cot)
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
        assert bool((b != 0).any()) or ids == [1, 1]


def test_empty_and_single_rows_and_a_layer_without_gradient() -> None:
    """Row sums 0 (the clamp's flat side) and 1 (its edge); a layer whose weights are unused."""
    logits = [torch.zeros(2, 3, 2, requires_grad=True), torch.zeros(2, 3, 2, requires_grad=True)]
    noise = torch.tensor([[-5.0, 5.0]] * 3 + [[0.3, 0.1], [0.0, 0.2], [0.0, 0.2]])  # task 1: none on, then one
    for ids in ([1], [0, 1]):
        n = torch.cat([noise, noise.flip(0)]) if len(ids) == 2 else noise
        z, w = sampled_mix_weights(logits, ids, n, 2.0)
        z_ref, w_ref = _reference(logits, ids, n, 2.0)
        assert [a.tolist() for a in z] == [a.detach().tolist() for a in z_ref]
        assert {0.0, 1.0} <= set(torch.cat([a.sum(1) for a in z]).tolist())
        cot = torch.randn(len(ids), 3)
        (g,) = torch.autograd.grad((w[1] * cot).sum(), logits[1])  # layer 0's weights unused
        (g_ref,) = torch.autograd.grad((w_ref[1] * cot).sum(), logits[1])
        torch.testing.assert_close(g, g_ref, rtol=1e-6, atol=1e-7)
        if ids == [1]:
            assert torch.equal(g[0], torch.zeros(3, 2))  # task 0's rows untouched


def test_gumbel_matrix_step_equals_the_reference_path() -> None:
    """A training forward + backward of the 4-MNISTs network: the fused routing against the
    reference routing (same seed): same outputs, sample, generator state and gradients."""
    torch.manual_seed(0)
    net = build_modular_network("mnist4", (1, 28, 28))
    fused = GumbelMatrix(net, 4, seed=3, temperature=None, dropout=0.0).train()
    ref = copy.deepcopy(fused)
    ref.routing = lambda ids: _ModularScheme.routing(ref, ids)  # allocation() + mix_weights per layer
    x = torch.randn(2, 5, 1, 28, 28)
    for tasks in ([1, 3], [2]):
        fused.temperature = ref.temperature = 0.6
        outs = []
        for scheme in (fused, ref):
            scheme.zero_grad(set_to_none=True)
            y = scheme(x[:len(tasks)], tasks)
            (y * torch.linspace(-1, 1, y.numel()).view(y.shape)).sum().backward()
            outs.append(y)
        torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
        assert torch.equal(fused.generator.get_state(), ref.generator.get_state())
        for a, b in zip(fused._last_sample, ref._last_sample):
            assert torch.equal(a, b)
        for (name, p), q in zip(fused.named_parameters(), ref.parameters()):
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-6, msg=name)
