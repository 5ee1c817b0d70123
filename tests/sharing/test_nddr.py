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


def _stats(scheme) -> list[dict[str, torch.Tensor]]:
    return [{k: v.clone() for k, v in norm.state_dict().items()} for norm in scheme.norm]


@pytest.mark.parametrize("core", [conv_core(depth=2), dense_core(depth=2)], ids=["conv", "dense"])
@pytest.mark.parametrize("task", [0, 2])
def test_a_one_task_pass_moves_only_that_tasks_last_layer_running_statistics(core, task: int) -> None:
    """The last NDDR layer's channels of task t are task t's (``parameter_owners``), so a training
    pass over task t alone (an alternating update) must leave the other tasks' running mean and
    variance there bit-identical; before the fix it moved them (all columns run on task t's
    input). Everything else is what the plain BatchNorm call gives: the output and the gradient,
    task t's last-layer statistics, every statistic of the earlier layer (it feeds every task)
    and one more ``num_batches_tracked`` per layer."""
    import copy

    torch.manual_seed(0)
    t, c = 3, core.feature_shape[0]
    scheme = create_scheme("nddr", core, t)
    ref = copy.deepcopy(scheme)  # the reference: the joint (plain) pass over the same shared input
    x = torch.randn(1, 5, *core.feature_shape)
    before, buffers = _stats(scheme), list(scheme.buffers())
    out = scheme(x, [task])
    assert all(a is b for a, b in zip(scheme.buffers(), buffers))  # the module keeps its own buffers
    full = ref(x.expand(t, *x.shape[1:]))
    assert torch.equal(out, full[task:task + 1])
    out.square().sum().backward()
    full[task:task + 1].square().sum().backward()
    for (name, p), q in zip(scheme.named_parameters(), ref.parameters()):
        assert torch.equal(p.grad, q.grad), name
    own = torch.arange(t * c) // c == task  # [T*C] channels of the task
    after, moved = _stats(scheme), _stats(ref)
    for name in ("running_mean", "running_var"):
        assert torch.equal(after[0][name], moved[0][name])  # the earlier layer: as the plain call
        assert not torch.equal(after[0][name], before[0][name])
        last = after[-1][name]
        assert torch.equal(last[own], moved[-1][name][own]) and not torch.equal(last[own], before[-1][name][own])
        assert torch.equal(last[~own], before[-1][name][~own]), f"other tasks' {name} moved"
        assert not torch.equal(moved[-1][name][~own], before[-1][name][~own])  # what the plain call would do
    for d in range(2):
        assert int(after[d]["num_batches_tracked"]) == int(before[d]["num_batches_tracked"]) + 1


def test_joint_passes_and_evaluation_are_the_plain_batch_norm_bit_for_bit() -> None:
    """With every task in the pass (joint mode) the layers are the plain calls: the output and
    every running statistic equal a loop over the same ops with an untouched BatchNorm copy;
    in evaluation a one-task pass leaves every statistic alone."""
    import copy

    torch.manual_seed(0)
    core, t = conv_core(depth=2), 3
    scheme = create_scheme("nddr", core, t)
    norms = copy.deepcopy(scheme.norm)
    x = torch.randn(t, 4, *core.feature_shape)
    out = scheme(x)
    h = x
    for d in range(2):
        h = scheme.bank.forward_selected(h, [i * 2 + d for i in range(t)])
        b, s = h.shape[1], h.shape[3:]
        z = h.transpose(0, 1).reshape(b, t * h.shape[2], -1)
        y = norms[d](torch.einsum("oi,bis->bos", scheme.weight[d], z)).relu()
        h = y.reshape(b, t, h.shape[2], *s).transpose(0, 1)
    assert torch.equal(out, h)
    for mine, plain in zip(scheme.norm, norms):
        for (name, a), bb in zip(mine.named_buffers(), plain.buffers()):
            assert torch.equal(a, bb), name
    scheme.eval()
    before = _stats(scheme)
    scheme(x[:1], [1])
    assert all(torch.equal(a[k], b[k]) for a, b in zip(before, _stats(scheme)) for k in a)
