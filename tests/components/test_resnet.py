"""The plain-torch ResNet-18-style backbone against the paper's architecture (He et al., Table 1)."""

from __future__ import annotations

import pytest
import torch

from sharewise.components.resnet import BasicBlock, ResNet18, resnet18_stages, stage_widths
from sharewise.errors import ConfigError


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_full_width_imagenet_resnet18_has_the_published_parameter_count() -> None:
    # torchvision's resnet18 has 11,689,512 parameters; its 512 x 1000 classifier (513,000) is the
    # task head here, so the backbone of Table 1 must have 11,176,512.
    assert n_params(ResNet18(1.0, 3, "imagenet")) == 11_689_512 - 513_000


def test_stage_shapes_and_widths_on_small_images() -> None:
    stages = resnet18_stages(width=0.125, in_channels=1)
    assert len(stages) == 4 and stage_widths(0.125) == [8, 16, 32, 64]
    x = torch.randn(3, 1, 32, 32)
    shapes = []
    for s in stages:
        x = s(x)
        shapes.append(list(x.shape[1:]))
    assert shapes == [[8, 32, 32], [16, 16, 16], [32, 8, 8], [64, 4, 4]]
    imagenet = resnet18_stages(width=0.125, in_channels=3, stem_kind="imagenet")
    assert list(imagenet[0](torch.randn(2, 3, 64, 64)).shape) == [2, 8, 16, 16]  # 7x7/2 + pool/2


def test_basic_block_identity_and_projection_shortcuts() -> None:
    same = BasicBlock(4)
    assert isinstance(same.shortcut, torch.nn.Identity)
    assert list(same(torch.randn(2, 4, 6, 6)).shape) == [2, 4, 6, 6]
    down = BasicBlock(4, 8, stride=2)
    assert isinstance(down.shortcut, torch.nn.Sequential)  # 1x1 conv + BN (option B)
    assert list(down(torch.randn(2, 4, 6, 6)).shape) == [2, 8, 3, 3]
    # With the residual branch silenced (last BN's scale = 0), the block is relu(shortcut(x)).
    with torch.no_grad():
        same.bn2.weight.zero_()
    x = torch.randn(2, 4, 6, 6)
    torch.testing.assert_close(same(x), x.relu())


def test_bad_arguments_are_explained() -> None:
    with pytest.raises(ConfigError, match="width multiplier must be > 0, but got 0"):
        resnet18_stages(width=0)
    with pytest.raises(ConfigError, match="stem must be one of \\['cifar', 'imagenet'\\], but got 'big'"):
        resnet18_stages(stem_kind="big")
    with pytest.raises(ConfigError, match="out_channels=0"):
        BasicBlock(4, 0)
