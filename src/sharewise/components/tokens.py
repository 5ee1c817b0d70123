"""Images as token sequences, for transformer layers as core blocks (an example encoder).

:class:`ImageRows` reads a ``[N, 1, H, W]`` image as H tokens of W pixels (one token per row),
embeds each with a shared linear map and adds a learned position embedding, so that H tokens of
width ``d_model`` reach ``nn.TransformerEncoderLayer(d_model, ..., batch_first=True)`` blocks.
Rows rather than ViT patches keep the sequence short on a CPU; it is an encoder for examples and
tests, not a claim about the best tokenisation.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sharewise.errors import ShapeError


class ImageRows(nn.Module):
    """``[N, C, H, W] -> [N, H, d_model]``: each row (all channels) is a token."""

    def __init__(self, width: int, d_model: int, rows: int, channels: int = 1) -> None:
        super().__init__()
        self.rows, self.width, self.channels = rows, width, channels
        self.embed = nn.Linear(channels * width, d_model)
        self.position = nn.Parameter(torch.zeros(rows, d_model))
        nn.init.normal_(self.position, std=0.02)

    def forward(self, x: Tensor) -> Tensor:
        if tuple(x.shape[1:]) != (self.channels, self.rows, self.width):
            raise ShapeError(f"ImageRows expects images [N, {self.channels}, {self.rows}, {self.width}], "
                             f"but got {list(x.shape)}; set channels, rows and width to the images' shape")
        n = x.shape[0]
        tokens = x.permute(0, 2, 1, 3).reshape(n, self.rows, self.channels * self.width)  # [N, H, C*W]
        return self.embed(tokens) + self.position  # [N, H, d_model]
