"""The modular networks of the Gumbel-Matrix experiments, by name (Maziarz et al., App. A, B, C).

Each builder takes the core's input shape (one sample, no batch axes) and keyword options and
returns a :class:`ModularNetwork`. ``MODULAR_NETWORKS`` maps the names a config uses to builders.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from sharewise.components.conv_mix import StackedAvgPool2d
from sharewise.components.fused_banks import ConvBank, ConvNormBank, MLPBank
from sharewise.components.layer_bank import ModuleLayerBank
from sharewise.components.modular import ModularLayer, ModularNetwork
from sharewise.errors import ConfigError


def mlp_network(in_shape: Sequence[int], *, n_components: int = 4, n_layers: int = 1, hidden: int = 16,
                out_features: int = 1, depth: int = 3, out_activation: str = "linear") -> ModularNetwork:
    """App. A3: one modular layer of 4 MLPs (3 dense layers, 16 hidden, ReLU, 1 linear output)."""
    (width,) = _flat(in_shape, "mlp")
    layers = []
    for _ in range(n_layers):
        bank = MLPBank(n_components, width, hidden, out_features, depth, out_activation=out_activation)
        layers.append(ModularLayer(bank, (width,)))
        width = out_features
    return ModularNetwork(layers, in_shape)


class _Dense(nn.Sequential):
    def __init__(self, widths: Sequence[int]) -> None:
        mods: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            mods += [nn.Linear(a, b), nn.ReLU()]
        super().__init__(*mods)


def transfer_network(in_shape: Sequence[int], *, out_features: int = 4, hidden: int = 4) -> ModularNetwork:
    """App. A2 (Sec. II): 4 parallel components, two of 1 dense layer and two of 2 (4 hidden), 4 outputs, ReLU."""
    (width,) = _flat(in_shape, "transfer")
    comps = [_Dense([width, out_features]), _Dense([width, out_features]),
             _Dense([width, hidden, out_features]), _Dense([width, hidden, out_features])]
    names = ["dense1_a", "dense1_b", "dense2_a", "dense2_b"]
    return ModularNetwork([ModularLayer(ModuleLayerBank(comps), (width,), names)], in_shape)


# The 4-MNISTs layers' ConvBank impl, chosen per layer by measurement
# (benchmarks/bench_gumbel_matrix.py, per-layer table; docs/results.md §8.4).
MNIST4_IMPL = ("unfold", "unfold", "unfold")


def mnist4_network(in_shape: Sequence[int] = (1, 28, 28), *, n_components: int = 4, filters: int = 4,
                   kernels: Sequence[int] = (5, 3, 3), pool_after: Sequence[int] = (0, 1),
                   impl: Literal["conv", "unfold"] | list[str] | None = None) -> ModularNetwork:
    """App. B: 3 modular layers of 4 convs (5x5, 3x3, 3x3; 4 filters; valid padding; ReLU),
    2x2 average pooling after the first two (shared, after the mixing: pooling is linear).

    ``impl``: the ConvBank implementation ('conv' or 'unfold'), one for every layer or one per
    layer; None: ``MNIST4_IMPL`` for the first three layers (measured), 'unfold' after them.
    All are exact up to float rounding.
    """
    impls = _per_layer_impl(impl, len(kernels))
    shape = tuple(in_shape)
    layers, post = [], []
    for k, size in enumerate(kernels):
        layer = ModularLayer(ConvBank(n_components, shape[0], filters, size, impl=impls[k]), shape,
                             [f"conv{size}x{size}_{c}" for c in range(n_components)])
        layers.append(layer)
        post.append(StackedAvgPool2d(2) if k in pool_after else None)
        with torch.no_grad():
            shape = tuple((post[-1] or nn.Identity())(torch.zeros(1, *layer.out_shape)).shape[1:])
    return ModularNetwork(layers, in_shape, post)


def _per_layer_impl(impl: str | Sequence[str] | None, n_layers: int) -> list[str]:
    if impl is None:
        return [MNIST4_IMPL[k] if k < len(MNIST4_IMPL) else "unfold" for k in range(n_layers)]
    if isinstance(impl, str):
        return [impl] * n_layers
    impls = list(impl)
    if len(impls) != n_layers:
        raise ConfigError(f"mnist4 network: impl needs one entry per modular layer ({n_layers}), but got {impls}")
    return impls


def _gn_relu(channels: int, groups: int) -> nn.Sequential:
    return nn.Sequential(nn.GroupNorm(groups, channels), nn.ReLU())


def _conv_pair(ch: int, k1: tuple[int, int], k2: tuple[int, int], stride: int, groups: int) -> nn.Sequential:
    pad = lambda k: (k[0] // 2, k[1] // 2)  # noqa: E731  ('same' padding for odd kernels)
    return nn.Sequential(nn.Conv2d(ch, ch, k1, padding=pad(k1)), _gn_relu(ch, groups),
                         nn.Conv2d(ch, ch, k2, stride=stride, padding=pad(k2)), _gn_relu(ch, groups))


class _Identity(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x


def omniglot_components(channels: int, stride: int, groups: int) -> tuple[list[nn.Module], list[str]]:
    """Fig. 4: the 7 components of one Omniglot modular layer; stride on each one's last op."""
    comps: list[nn.Module] = [
        _conv_pair(channels, (3, 3), (3, 3), stride, groups),
        _conv_pair(channels, (5, 5), (5, 5), stride, groups),
        _conv_pair(channels, (7, 7), (7, 7), stride, groups),
        _conv_pair(channels, (1, 7), (7, 1), stride, groups),
        nn.MaxPool2d(3, stride=stride, padding=1),
        nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False),  # TF 'SAME' pooling
        # App. C1: a strided identity is a strided 1x1 convolution (as in Ramachandran & Le).
        nn.Conv2d(channels, channels, 1, stride=stride) if stride > 1 else _Identity(),
    ]
    names = ["conv3x3_3x3", "conv5x5_5x5", "conv7x7_7x7", "conv1x7_7x1", "maxpool3x3", "avgpool3x3", "identity"]
    return comps, names


def omniglot20_network(in_shape: Sequence[int] = (1, 105, 105), *, channels: int = 48, n_layers: int = 8,
                       strided_layers: Sequence[int] = (0, 1, 3, 4, 6), groups: int = 8) -> ModularNetwork:
    """Sec. V-B, Fig. 3/4, App. C1: shared 1x1 conv to ``channels`` + GN + ReLU, then ``n_layers``
    modular layers of 7 components, each followed by a shared GN + ReLU.

    The GroupNorm group count is not given in the paper; 8 by default (48 channels: 6 per group).
    """
    if channels % groups:
        raise ConfigError(f"channels must be divisible by groups, but got channels={channels}, groups={groups}")
    stem = nn.Sequential(nn.Conv2d(in_shape[0], channels, 1), _gn_relu(channels, groups))
    with torch.no_grad():
        shape = tuple(stem(torch.zeros(2, *in_shape)).shape[1:])
    layers, post = [], []
    for k in range(n_layers):
        comps, names = omniglot_components(channels, 2 if k in strided_layers else 1, groups)
        layer = ModularLayer(ModuleLayerBank(comps), shape, names)
        layers.append(layer)
        post.append(_gn_relu(channels, groups))
        shape = layer.out_shape
    return ModularNetwork(layers, in_shape, post, stem=stem)


def clusters_network(in_shape: Sequence[int] = (1, 28, 28), *, n_layers: int = 3, channels: int = 8,
                     kernels: Sequence[int] = (3,) * 8 + (5,) * 8, stride: int = 2, groups: int = 2) -> ModularNetwork:
    """Sec. V-C: a shared 1x1 conv to ``channels`` (+ GN + ReLU), then ``n_layers`` modular layers of
    16 components (8 conv 3x3 + 8 conv 5x5 by default), each conv 'same'-padded with stride 2 and
    followed by GN + ReLU, and a shared GN + ReLU after each layer ("as in Sec. V-B").

    The GroupNorm group count is not given; 2 by default (8 channels: 4 per group). The components
    of one kernel size run as one convolution and one GroupNorm (:class:`ConvNormBank`, exact).
    """
    if channels % groups:
        raise ConfigError(f"channels must be divisible by groups, but got channels={channels}, groups={groups}")
    stem = nn.Sequential(nn.Conv2d(in_shape[0], channels, 1), _gn_relu(channels, groups))
    shape = (channels, *tuple(in_shape)[1:])
    layers, post = [], []
    for _ in range(n_layers):
        names = [f"conv{k}x{k}_{c}" for c, k in enumerate(kernels)]
        layers.append(ModularLayer(ConvNormBank(kernels, channels, stride, groups), shape, names))
        post.append(_gn_relu(channels, groups))
        shape = layers[-1].out_shape
    return ModularNetwork(layers, in_shape, post, stem=stem)


def _flat(in_shape: Sequence[int], name: str) -> tuple[int]:
    if len(in_shape) != 1:
        raise ConfigError(f"modular network {name!r} needs flat features [d], but got input shape {list(in_shape)}")
    return (int(in_shape[0]),)


MODULAR_NETWORKS: dict[str, Callable[..., ModularNetwork]] = {
    "mlp": mlp_network,
    "transfer": transfer_network,
    "mnist4": mnist4_network,
    "omniglot20": omniglot20_network,
    "clusters": clusters_network,
}


def build_modular_network(name: str, in_shape: Sequence[int], **options: Any) -> ModularNetwork:
    """Build the named network; unknown names and options raise ConfigError listing the valid ones."""
    if name not in MODULAR_NETWORKS:
        raise ConfigError(f"unknown modular network {name!r}; valid: {sorted(MODULAR_NETWORKS)}")
    try:
        return MODULAR_NETWORKS[name](in_shape, **options)
    except TypeError as err:
        raise ConfigError(f"modular network {name!r}: {err}") from None
