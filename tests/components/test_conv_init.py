"""ConvPoolLayer's initialisation: PyTorch's default unchanged, or Keras' Glorot-uniform with zero
biases (model.core.init), and the config key checked."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from sharewise.components.conv import ConvPoolLayer
from sharewise.config import parse_config
from sharewise.errors import ConfigError


def test_default_is_pytorchs_conv_init_bit_for_bit() -> None:
    torch.manual_seed(3)
    layer = ConvPoolLayer(53, 3)
    torch.manual_seed(3)
    ref = nn.Conv2d(53, 53, 3, padding=1)
    assert torch.equal(layer.conv.weight, ref.weight) and torch.equal(layer.conv.bias, ref.bias)


def test_glorot_draws_uniform_weights_within_the_keras_bound_and_zero_biases() -> None:
    torch.manual_seed(0)
    w = ConvPoolLayer(53, 3, init="glorot").conv.requires_grad_(False)
    bound = math.sqrt(6.0 / (53 * 9 + 53 * 9))  # fan_in = fan_out = 53 * 3 * 3
    assert float(w.weight.abs().max()) <= bound
    assert float(w.weight.std()) == pytest.approx(bound / math.sqrt(3.0), rel=0.02)  # U(-a, a): std a / sqrt 3
    assert torch.count_nonzero(w.bias) == 0
    with pytest.raises(ValueError, match="init"):
        ConvPoolLayer(4, 3, init="he")


def test_config_key_builds_and_is_refused_on_dense_cores() -> None:
    from sharewise.builders import _make_bank_fn

    cfg = parse_config({"model": {"encoder": {"kind": "channel_pad"}, "core": {"kind": "conv", "width": 4,
                                                                                "init": "glorot"}}})
    bank = _make_bank_fn(cfg, (4, 8, 8))(2)
    assert all(torch.count_nonzero(layer.conv.bias) == 0 for layer in bank.layers)
    with pytest.raises(ConfigError, match="model.core.init"):
        parse_config({"model": {"core": {"kind": "dense", "init": "glorot"}}})
    with pytest.raises(ConfigError, match="init"):
        parse_config({"model": {"core": {"kind": "conv", "init": "he"}}})
