"""NDDR: diagonal init, per-task 1x1 conv + per-task batch norm + ReLU, checked against a loop."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sharewise.sharing import create_scheme
from sharewise.sharing.nddr import nddr_init
from tests.sharing._branched_helpers import build, conv_core, dense_core


def test_diagonal_init_scaled_to_t() -> None:
    w = nddr_init(3, 2, 0.9)  # [T*C, T*C]
    assert w.shape == (6, 6)
    assert w[0, 0].item() == pytest.approx(0.9) and w[0, 2].item() == pytest.approx(0.05)
    assert w[0, 1].item() == 0.0 and w[0, 3].item() == 0.0  # identity within each task block


@pytest.mark.parametrize("core", [conv_core(depth=2), dense_core(depth=2)], ids=["conv", "dense"])
def test_forward_equals_per_task_layers_with_per_task_batch_norm(core) -> None:
    torch.manual_seed(0)
    t = 3
    scheme = create_scheme("nddr", core, t)
    with torch.no_grad():
        for w in scheme.weight:
            w.add_(0.1 * torch.randn_like(w))
        for norm in scheme.norm:
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.2, 0.2)
    x = torch.randn(t, 4, *core.feature_shape)
    out = scheme(x)  # training mode: batch statistics
    c = core.feature_shape[0]
    h = [x[i] for i in range(t)]
    for d in range(2):
        h = [scheme.bank.forward_one(i * 2 + d, h[i]) for i in range(t)]
        z = torch.cat(h, 1)  # [B, T*C, *s]
        new = []
        for i in range(t):  # task i's own 1x1 conv and its own batch norm (stats of its channels only)
            rows = slice(i * c, (i + 1) * c)
            w = scheme.weight[d][rows]  # [C, T*C]
            y = torch.einsum("oi,bi...->bo...", w, z)
            norm = scheme.norm[d]
            dims = [0] + list(range(2, y.dim()))
            mean, var = y.mean(dims, keepdim=True), y.var(dims, unbiased=False, keepdim=True)
            shape = [1, c] + [1] * (y.dim() - 2)
            y = (y - mean) / torch.sqrt(var + norm.eps)
            y = y * norm.weight[rows].view(shape) + norm.bias[rows].view(shape)
            new.append(F.relu(y))
        h = new
    torch.testing.assert_close(out, torch.stack(h), rtol=1e-4, atol=1e-5)


def test_every_parameter_gets_a_gradient_and_eval_on_one_task_works() -> None:
    model = build("nddr")
    x = torch.rand(4, 6, 1, 8, 8)
    out = model(x)
    assert out.shape == (4, 6, 3) and torch.isfinite(out).all()
    out.square().sum().backward()
    for name, p in model.scheme.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    model.eval()
    shared = x[:1].expand_as(x)
    torch.testing.assert_close(model(shared[:1], [2]), model(shared)[2:3])
