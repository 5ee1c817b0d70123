"""Convolutional core layers for soft / permuted ordering of image models (Omniglot, Sec. 4.3)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ConvPoolLayer(nn.Module):
    """conv kxk ('same' padding, channels -> channels) + ReLU, then an optional 2x2 max pool.

    Channels in equal channels out, so the layer can be applied at any depth, which soft and
    permuted ordering need (the paper pads the 1-channel image to 53 channels for this reason).

    With ``zero_extends_input`` set (the builders set it together with ``ChannelPad(lazy=True)``,
    :func:`sharewise.builders.feed_unpadded`), an input with fewer channels than ``channels`` is
    read as zero-padded to ``channels`` (the paper's channel padding, Sec. 4.3): the zero channels
    add nothing to any output, so the conv runs on the live channels with the matching slice of the
    weights. For the 1-channel Omniglot image under 53 channels that makes the first depth 53x
    cheaper, and at 52x52 or 105x105 the first depth is ~75 % of the network's FLOPs. Unset (the
    default), a narrower input is the shape error it would be for ``nn.Conv2d``, so a misconfigured
    core (an identity encoder feeding 1-channel images to a 4-channel core) is still refused.

    ``init="torch"``: PyTorch's Conv2d default (weights and biases uniform +-1/sqrt(fan_in)).
    ``init="glorot"``: Glorot-uniform weights and zero biases, Keras' default and so the
    soft-ordering paper's (its experiments ran in Keras); the dense core banks use it too. On a
    zero-padded image only 1 of the 53 input channels carries signal, so under the PyTorch default
    the random biases outweigh the image in every layer.

    The layer computes in the channels-last memory layout (``channels_last``, a class attribute so
    that ``benchmarks/step_time.py --memory-format`` can time both): on this project's CPU the
    2x2 max pool of an NCHW map of 53 channels at 52x52 took 48 ms against 7 ms channels-last
    (50 images, one thread), and conv + pool + ReLU forward and backward ran 2.2x (52x52) and 1.9x
    (26x26) faster. The values are the same up to float rounding (a different summation order in
    the convolution); the output keeps its [N, C, H', W'] shape, only its strides differ.
    """

    channels_last = True

    def __init__(self, channels: int, kernel_size: int = 3, pool: bool = True, init: str = "torch") -> None:
        super().__init__()
        if init not in ("torch", "glorot"):
            raise ValueError(f"ConvPoolLayer init must be 'torch' or 'glorot', got {init!r}")
        self.conv = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2)
        if init == "glorot":
            nn.init.xavier_uniform_(self.conv.weight)
            nn.init.zeros_(self.conv.bias)
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()
        self.zero_extends_input = False

    def forward(self, x: Tensor) -> Tensor:  # [N, C, H, W] -> [N, C, H', W']
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)  # a no-op when it already is
        live = x.shape[1]
        if live < self.conv.in_channels and self.zero_extends_input:  # the missing channels contribute 0
            y = F.conv2d(x, self.conv.weight[:, :live], self.conv.bias, padding=self.conv.padding)
        else:
            y = self.conv(x)
        # ReLU after the pool: max and ReLU commute (both monotone), bit for bit in values and
        # gradients, and the pooled map is 4x smaller; in place, as neither the pool nor the conv
        # keeps its output for the backward pass.
        return torch.relu_(self.pool(y))
