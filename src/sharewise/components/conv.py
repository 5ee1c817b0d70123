"""Convolutional core layers for soft / permuted ordering of image models (Omniglot, Sec. 4.3)."""

from __future__ import annotations

from torch import Tensor, nn


class ConvPoolLayer(nn.Module):
    """conv kxk ('same' padding, channels -> channels) + ReLU, then an optional 2x2 max pool.

    Channels in equal channels out, so the layer can be applied at any depth, which soft and
    permuted ordering need (the paper pads the 1-channel image to 53 channels for this reason).
    """

    def __init__(self, channels: int, kernel_size: int = 3, pool: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:  # [N, C, H, W] -> [N, C, H', W']
        return self.pool(self.conv(x).relu())
