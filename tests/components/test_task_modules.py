"""Stacked task encoders/heads: zero padding makes one batched product equal T separate layers."""

from __future__ import annotations

import math

import pytest
import torch

from sharewise.components.task_modules import ChannelPad, Identity, StackedDense

IN_DIMS = [3, 7, 2, 5]


def separate_maps(m: StackedDense) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Task t's own nn.Linear-like map: weight [in_t, out], bias [out] (views of the stacked ones)."""
    return [(m.weight[t, :d], m.bias[t, 0]) for t, d in enumerate(m.in_dims)]


def padded_batch(in_dims: list[int], batch: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    xs = [torch.randn(batch, d) for d in in_dims]
    width = max(in_dims)
    return xs, torch.stack([torch.nn.functional.pad(x, (0, width - x.shape[1])) for x in xs])


@pytest.mark.parametrize("activation", ["linear", "relu"])
def test_stacked_dense_equals_separate_maps_with_different_input_widths(activation: str) -> None:
    torch.manual_seed(0)
    m = StackedDense(IN_DIMS, 4, activation)
    with torch.no_grad():
        m.bias.normal_()
    xs, x = padded_batch(IN_DIMS, 6)
    y = m(x)
    assert y.shape == (4, 6, 4)
    act = torch.relu if activation == "relu" else (lambda v: v)
    refs = [act(xt @ w + b) for xt, (w, b) in zip(xs, separate_maps(m))]
    for t in range(4):
        torch.testing.assert_close(y[t], refs[t])
    # Gradients: the padded weights get exactly zero, the real ones get the separate maps' gradient.
    g = torch.randn_like(y)
    (y * g).sum().backward()
    for t, d in enumerate(IN_DIMS):
        assert torch.equal(m.weight.grad[t, d:], torch.zeros(max(IN_DIMS) - d, 4))
        w = m.weight[t, :d].detach().requires_grad_()
        b = m.bias[t, 0].detach().requires_grad_()
        (act(xs[t] @ w + b) * g[t]).sum().backward()
        torch.testing.assert_close(m.weight.grad[t, :d], w.grad)
        torch.testing.assert_close(m.bias.grad[t, 0], b.grad)


def test_padded_weights_start_zero_and_glorot_bounds_use_each_task_width() -> None:
    torch.manual_seed(0)
    m = StackedDense([4, 100], 64)
    assert torch.equal(m.weight[0, 4:], torch.zeros(96, 64))
    assert m.weight[0, :4].abs().max() <= math.sqrt(6.0 / (4 + 64))
    assert m.weight[1].abs().max() <= math.sqrt(6.0 / (100 + 64))
    assert m.weight[0, :4].abs().max() > math.sqrt(6.0 / (100 + 64))  # its own, wider bound
    assert torch.equal(m.bias, torch.zeros(2, 1, 64))


def test_narrower_inputs_are_padded_and_images_flattened() -> None:
    torch.manual_seed(0)
    m = StackedDense([12, 12], 3)
    img = torch.randn(2, 5, 3, 2, 2)  # [T, B, C, H, W] -> 12 features
    torch.testing.assert_close(m(img), m(img.reshape(2, 5, 12)))
    narrow = torch.randn(2, 5, 10)
    torch.testing.assert_close(m(narrow), m(torch.nn.functional.pad(narrow, (0, 2))))


def test_task_subset_selects_each_tasks_own_weights() -> None:
    torch.manual_seed(0)
    m = StackedDense(IN_DIMS, 4)
    with torch.no_grad():
        m.bias.normal_()
    _, x = padded_batch(IN_DIMS, 6)
    full = m(x)
    torch.testing.assert_close(m(x[[2, 0]], [2, 0]), full[[2, 0]])
    torch.testing.assert_close(m(x[[3]], [3]), full[[3]])


def test_shared_map_is_one_map_for_every_task() -> None:
    torch.manual_seed(0)
    m = StackedDense([5, 5, 5], 2, shared=True)
    assert m.weight.shape == (1, 5, 2)
    x = torch.randn(3, 4, 5)
    y = m(x)
    torch.testing.assert_close(y, x @ m.weight[0] + m.bias[0, 0])
    torch.testing.assert_close(m(x[[1]], [1]), y[[1]])


def test_frozen_encoders_have_no_parameters() -> None:
    m = StackedDense([784] * 3, 64, "relu", frozen=True)
    assert list(m.parameters()) == []
    assert set(dict(m.named_buffers())) == {"weight", "bias"}
    assert set(m.state_dict()) == {"weight", "bias"}  # still saved: the random encoders are part of the run
    x = torch.randn(3, 2, 784, requires_grad=True)
    y = m(x)
    assert (y >= 0).all() and y.shape == (3, 2, 64)
    y.sum().backward()
    assert x.grad is not None and m.weight.grad is None


def test_channel_pad_and_identity() -> None:
    x = torch.randn(2, 3, 1, 4, 4)
    y = ChannelPad(5)(x)
    assert y.shape == (2, 3, 5, 4, 4)
    assert torch.equal(y[:, :, :1], x) and torch.equal(y[:, :, 1:], torch.zeros(2, 3, 4, 4, 4))
    assert list(ChannelPad(5).parameters()) == []
    flat = torch.randn(2, 3, 4)  # [T', B, F] feature vectors
    padded = ChannelPad(6)(flat)
    assert padded.shape == (2, 3, 6) and torch.equal(padded[..., :4], flat) and not padded[..., 4:].any()
    assert Identity()(x, [0, 1]) is x
