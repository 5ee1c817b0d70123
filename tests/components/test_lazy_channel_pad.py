"""The unpadded image into the built-in conv core (``ChannelPad(lazy=True)``): the same network as
the paper's zero-padded one, with the padded channels never multiplied.

Checked as numbers: outputs and every gradient of the lazy model equal the eagerly padded model's
(same parameters) within float32 rounding, for each scheme that reads its input by layers; and the
builders turn laziness on exactly where it is safe.
"""

from __future__ import annotations

import copy

import pytest
import torch

from sharewise.assemble import finish_model
from sharewise.builders import build_model, feed_unpadded
from sharewise.components.conv import ConvPoolLayer
from sharewise.components.layer_bank import ModuleLayerBank
from sharewise.components.task_modules import ChannelPad
from sharewise.config import parse_config
from sharewise.errors import ConfigError
from sharewise.sharing import CoreSpec
from sharewise.tasks.spec import TaskData

WIDTH, SIDE, OUTS = 6, 8, [3, 2, 4]
READING = ["parallel", "single_task", "permuted", "soft_ordering", "soft_ordering_uniform", "cross_stitch", "nddr"]


def test_conv_layer_reads_a_narrow_input_as_zero_padded() -> None:
    torch.manual_seed(0)
    layer = ConvPoolLayer(WIDTH, 3, pool=True, init="glorot")
    with pytest.raises(RuntimeError):  # by default a narrower input is a shape error, as for nn.Conv2d
        layer(torch.randn(5, 2, SIDE, SIDE))
    layer.zero_extends_input = True
    nn_bias = torch.randn(WIDTH) * 0.1
    with torch.no_grad():
        layer.conv.bias.copy_(nn_bias)  # a non-zero bias: it must be added once, as in the padded conv
    x = torch.randn(5, 2, SIDE, SIDE)
    padded = torch.nn.functional.pad(x, (0, 0, 0, 0, 0, WIDTH - 2))
    narrow = layer(x)
    narrow.square().sum().backward()
    grads_narrow = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    full = layer(padded)
    full.square().sum().backward()
    torch.testing.assert_close(narrow, full, rtol=1e-6, atol=1e-6)
    for got, want in zip(grads_narrow, [p.grad for p in layer.parameters()]):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert torch.count_nonzero(grads_narrow[0][:, 2:]) == 0  # the padded channels' weights get nothing


def _conv_model(scheme: str, lazy: bool) -> torch.nn.Module:
    torch.manual_seed(1)
    core = CoreSpec(make_bank=lambda n: ModuleLayerBank([ConvPoolLayer(WIDTH, 3, True, "glorot") for _ in range(n)]),
                    depth=2, feature_shape=(WIDTH, SIDE, SIDE))
    return finish_model(scheme, ChannelPad(WIDTH, lazy=lazy), core, OUTS, seed=0)


@pytest.mark.parametrize("scheme", READING)
def test_lazy_padding_gives_the_padded_models_outputs_and_gradients(scheme: str) -> None:
    eager = _conv_model(scheme, lazy=False)
    lazy = copy.deepcopy(eager)
    feed_unpadded(lazy)
    x = torch.randn(len(OUTS), 4, 1, SIDE, SIDE, generator=torch.Generator().manual_seed(2))
    results = []
    for model in (eager, lazy):
        model.eval()  # no dropout: the two forward passes see the same network
        out = model(x)
        out.square().sum().backward()
        results.append((out, {n: p.grad for n, p in model.named_parameters() if p.grad is not None}))
    (out_e, grads_e), (out_l, grads_l) = results
    torch.testing.assert_close(out_l, out_e, rtol=1e-5, atol=1e-6)
    assert grads_l.keys() == grads_e.keys() and grads_e
    for name in grads_e:
        torch.testing.assert_close(grads_l[name], grads_e[name], rtol=1e-4, atol=1e-6, msg=name)


def _image_tasks() -> list[TaskData]:
    gen = torch.Generator().manual_seed(0)
    return [TaskData(name=f"t{i}", kind="multiclass", n_outputs=n,
                     **{f"{a}_{s}": (torch.rand(6, 1, SIDE, SIDE, generator=gen) if a == "x"
                                    else torch.randint(0, n, (6,), generator=gen))
                        for s in ("train", "val", "test") for a in ("x", "y")})
            for i, n in enumerate(OUTS)]


@pytest.mark.parametrize(("scheme", "options", "lazy"), [
    ("parallel", {}, True), ("soft_ordering", {}, True), ("permuted", {}, True),
    ("soft_ordering", {"identity": True}, False),  # the identity candidate mixes the input itself
    ("gumbel_matrix", {}, False),  # its modular network is not the core's layers one by one
])
def test_builders_pad_lazily_only_where_the_scheme_reads_its_input_by_layers(scheme: str, options: dict,
                                                                              lazy: bool) -> None:
    cfg = parse_config({"scheme": scheme, "scheme_options": options,
                        "model": {"encoder": {"kind": "channel_pad"},
                                  "core": {"kind": "conv", "width": WIDTH, "depth": 2, "pool": not options}}})
    model = build_model(cfg, _image_tasks())
    assert model.encoders.lazy is lazy
    convs = [m for m in model.modules() if isinstance(m, ConvPoolLayer)]
    assert all(m.zero_extends_input is lazy for m in convs)
    out = model(torch.rand(3, 2, 1, SIDE, SIDE))
    assert out.shape[:2] == (3, 2) and torch.isfinite(out).all()



@pytest.mark.parametrize("pool", [True, False])
def test_relu_after_the_pool_is_bit_identical_to_relu_before_it(pool: bool) -> None:
    torch.manual_seed(4)
    layer = ConvPoolLayer(WIDTH, 3, pool=pool)
    x = torch.randn(3, WIDTH, SIDE, SIDE, requires_grad=True)
    g = torch.randn_like(layer(x))
    got = layer(x)
    got_grads = torch.autograd.grad(got, [x, *layer.parameters()], g)
    xc = x.contiguous(memory_format=torch.channels_last)  # the layer's own layout (same rounding)
    want = layer.pool(layer.conv(xc).relu())  # the textbook order: conv, ReLU, pool
    want_grads = torch.autograd.grad(want, [x, *layer.parameters()], g)
    assert torch.equal(got, want)
    for a, b in zip(got_grads, want_grads):
        assert torch.equal(a, b)


def test_channels_last_layout_changes_only_the_rounding(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(5)
    layer = ConvPoolLayer(WIDTH, 3, pool=True, init="glorot")
    x = torch.randn(4, WIDTH, SIDE, SIDE, requires_grad=True)
    g = torch.randn_like(layer(x))
    fast = layer(x)
    assert fast.is_contiguous(memory_format=torch.channels_last)
    fast_grads = torch.autograd.grad(fast, [x, *layer.parameters()], g)
    monkeypatch.setattr(ConvPoolLayer, "channels_last", False)
    plain = layer(x)
    assert plain.is_contiguous()
    plain_grads = torch.autograd.grad(plain, [x, *layer.parameters()], g)
    torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-6)
    for a, b in zip(fast_grads, plain_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_channel_pad_of_feature_vectors_feeds_a_dense_core_zero_padded() -> None:
    # The LibMTL comparison's shared first layer 32 -> 64: zero-padded features into a 64-wide core.
    gen = torch.Generator().manual_seed(1)
    tasks = [TaskData(name=f"t{i}", kind="multiclass", n_outputs=2,
                      **{f"{a}_{s}": (torch.randn(6, 5, generator=gen) if a == "x"
                                     else torch.randint(0, 2, (6,), generator=gen))
                         for s in ("train", "val", "test") for a in ("x", "y")}) for i in range(2)]
    cfg = parse_config({"scheme": "parallel", "model": {"encoder": {"kind": "channel_pad"},
                                                        "core": {"kind": "dense", "width": 8, "depth": 2}}})
    model = build_model(cfg, tasks)
    x = torch.randn(2, 3, 5)
    padded = model.encoders(x)
    assert padded.shape == (2, 3, 8) and torch.equal(padded[..., :5], x) and not padded[..., 5:].any()
    assert model(x).shape == (2, 3, 2) and not model.encoders.lazy
    wide = parse_config({"scheme": "parallel", "model": {"encoder": {"kind": "channel_pad"},
                                                         "core": {"kind": "dense", "width": 4, "depth": 2}}})
    with pytest.raises(ConfigError, match="5 features, more than model.core.width=4"):
        build_model(wide, tasks)
