"""ImageRows: one token per image row, embedded by one shared linear map plus learned positions."""

from __future__ import annotations

import pytest
import torch

from sharewise.components.tokens import ImageRows
from sharewise.errors import ShapeError


def test_rows_become_tokens() -> None:
    enc = ImageRows(width=5, d_model=3, rows=4, channels=2)
    x = torch.randn(6, 2, 4, 5)
    y = enc(x)
    assert y.shape == (6, 4, 3)
    row = torch.cat([x[1, 0, 2], x[1, 1, 2]])  # token 2 of sample 1: row 2 of every channel
    torch.testing.assert_close(y[1, 2], enc.embed(row) + enc.position[2])


def test_wrong_image_shape_is_named() -> None:
    with pytest.raises(ShapeError, match=r"expects images \[N, 1, 4, 5\], but got \[2, 1, 5, 4\]"):
        ImageRows(width=5, d_model=3, rows=4)(torch.randn(2, 1, 5, 4))
