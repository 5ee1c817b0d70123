"""A ResNet-18-style backbone in plain torch (He et al., "Deep Residual Learning", CVPR 2016).

Written from the paper (Sec. 3-4, Table 1, Fig. 2 left) because torchvision cannot be a
dependency here (its wheels in the registry are built against another torch). The network:

- stem: ``"imagenet"`` is conv 7x7/2 (64 filters) + BN + ReLU + max pool 3x3/2 (Table 1,
  conv1); ``"cifar"`` is conv 3x3/1 + BN + ReLU with no pooling (the small-image variant of
  Sec. 4.2, which keeps 32x32 inputs from shrinking to 1x1 by the last stage);
- four stages of two BasicBlocks each (Fig. 2 left: 3x3 conv, BN, ReLU, 3x3 conv, BN, add the
  shortcut, ReLU) with 64, 128, 256, 512 filters; the first block of stages 2-4 halves the
  resolution with stride 2, and its shortcut is a 1x1 convolution with stride 2 + BN (the
  projection shortcut, option B of Sec. 3.3); other shortcuts are identities.

``width`` multiplies every filter count (``round(64 * width)`` in stage 1), so the same layout
fits a CPU: width 0.125 has 8-16-32-64 filters and ~0.17 M parameters instead of ~11 M.

:func:`resnet18_stages` returns the network split at the stage boundaries as D = 4 blocks
(stem + stage 1, stage 2, stage 3, stage 4), the form the branched scheme and the RSA affinity
take (Vandenhende et al. branch ResNets at the stage boundaries). The classifier (global average
pool + linear) is the task head, so it is not part of the backbone.
"""

from __future__ import annotations

from torch import Tensor, nn

from sharewise.errors import ConfigError

STAGE_FILTERS = (64, 128, 256, 512)  # Table 1, conv2_x .. conv5_x
STEMS = ("cifar", "imagenet")


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    # No bias: the batch normalisation that follows has its own shift (Sec. 3.4).
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (Fig. 2 left).

    ``[N, in_channels, H, W] -> [N, out_channels, H / stride, W / stride]``. With
    ``in_channels == out_channels`` and ``stride == 1`` the block maps a shape to itself, so D of
    them can be soft-ordered. A projection shortcut (1x1 conv + BN) is used exactly when the
    shape changes (option B, Sec. 3.3).
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, stride: int = 1) -> None:
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        if in_channels < 1 or out_channels < 1 or stride < 1:
            raise ConfigError(f"BasicBlock needs positive channels and stride, but got in_channels={in_channels}, "
                              f"out_channels={out_channels}, stride={stride}")
        self.conv1 = _conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = _conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn1(self.conv1(x)).relu()
        y = self.bn2(self.conv2(y))
        return (y + self.shortcut(x)).relu()


def stem(in_channels: int, channels: int, kind: str = "cifar") -> nn.Sequential:
    """Table 1's conv1 (``"imagenet"``: 7x7/2 + 3x3/2 max pool) or the 3x3/1 CIFAR stem (Sec. 4.2)."""
    if kind not in STEMS:
        raise ConfigError(f"stem must be one of {list(STEMS)}, but got {kind!r}")
    if kind == "imagenet":
        return nn.Sequential(nn.Conv2d(in_channels, channels, 7, stride=2, padding=3, bias=False),
                             nn.BatchNorm2d(channels), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1))
    return nn.Sequential(_conv3x3(in_channels, channels), nn.BatchNorm2d(channels), nn.ReLU())


def stage(in_channels: int, out_channels: int, n_blocks: int = 2, stride: int = 1) -> nn.Sequential:
    """``n_blocks`` BasicBlocks; the first one changes channels / resolution (Table 1's conv{k}_x)."""
    blocks = [BasicBlock(in_channels, out_channels, stride)]
    blocks += [BasicBlock(out_channels, out_channels) for _ in range(n_blocks - 1)]
    return nn.Sequential(*blocks)


def stage_widths(width: float) -> list[int]:
    """Filters per stage for a width multiplier (at least 1 filter each)."""
    if not width > 0:
        raise ConfigError(f"width multiplier must be > 0, but got {width}")
    return [max(1, round(f * width)) for f in STAGE_FILTERS]


def resnet18_stages(width: float = 1.0, in_channels: int = 3, stem_kind: str = "cifar",
                    blocks_per_stage: int = 2) -> nn.ModuleList:
    """ResNet-18 split at its stage boundaries: [stem + stage 1, stage 2, stage 3, stage 4].

    Each entry is one block ``f_d`` of a branched network (Vandenhende et al. split ResNets at
    the stages). Shapes for a ``[N, C, 32, 32]`` input with the CIFAR stem:
    ``[N, w1, 32, 32] -> [N, w2, 16, 16] -> [N, w3, 8, 8] -> [N, w4, 4, 4]``.
    """
    if in_channels < 1 or blocks_per_stage < 1:
        raise ConfigError(f"resnet18_stages needs in_channels >= 1 and blocks_per_stage >= 1, but got "
                          f"in_channels={in_channels}, blocks_per_stage={blocks_per_stage}")
    w = stage_widths(width)
    first = nn.Sequential(stem(in_channels, w[0], stem_kind), stage(w[0], w[0], blocks_per_stage))
    rest = [stage(w[k - 1], w[k], blocks_per_stage, stride=2) for k in range(1, 4)]
    return nn.ModuleList([first, *rest])


class ResNet18(nn.Module):
    """The whole backbone as one module (the stages in sequence), for users who do not branch."""

    def __init__(self, width: float = 1.0, in_channels: int = 3, stem_kind: str = "cifar") -> None:
        super().__init__()
        self.stages = resnet18_stages(width, in_channels, stem_kind)

    def forward(self, x: Tensor) -> Tensor:  # [N, C, H, W] -> [N, w4, H', W']
        for s in self.stages:
            x = s(x)
        return x
