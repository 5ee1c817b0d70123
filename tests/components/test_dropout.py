"""``dropout_masks``: several layers' masks from one draw, bit for bit those of one draw per layer."""

from __future__ import annotations

import pytest
import torch

from sharewise.components.dropout import dropout_mask, dropout_masks, packed_dropout

SHAPES = [
    [(640, 64)] * 4,  # the LibMTL workload's chain: whole 64-bit words per mask (one slice each)
    [(7,), (13, 3), (64,), (5, 5)],  # masks ending mid-word: each starts at its own word
    [(1,)],
    [(65,), (64,)],
]


@pytest.mark.parametrize("p", [0.5, 0.25, 0.125, 0.8, 0.2])
@pytest.mark.parametrize("shapes", SHAPES)
def test_one_draw_gives_the_masks_of_one_draw_per_mask(p: float, shapes: list[tuple[int, ...]]) -> None:
    torch.manual_seed(5)
    ref = [dropout_mask(s, p, torch.float32) for s in shapes]
    after_ref = torch.rand(3)
    torch.manual_seed(5)
    keeps, scale = dropout_masks(shapes, p, torch.float32)
    assert torch.equal(torch.rand(3), after_ref)  # the generator ends where the per-mask draws left it
    for (keep_ref, scale_ref), keep in zip(ref, keeps):
        assert scale == scale_ref and keep.shape == keep_ref.shape and torch.equal(keep, keep_ref)
    if sum(k.numel() for k in keeps) > 100:  # really random: neither all kept nor all dropped
        assert 0 < float(torch.cat([k.flatten() for k in keeps]).mean()) < 1
    torch.manual_seed(5)
    scaled, scale2 = dropout_masks(shapes, p, torch.float32, scaled=True)
    assert scale2 == scale
    for (keep_ref, s), keep in zip(ref, scaled):  # pre-scaled: the values keep.mul_(scale) gives
        assert torch.equal(keep, keep_ref.clone().mul_(s))


@pytest.mark.parametrize("p", [0.5, 0.8])
def test_packed_dropout_is_x_times_the_scaled_mask(p: float) -> None:
    x = torch.randn(33, 17)
    torch.manual_seed(2)
    keep, scale = dropout_mask(x.shape, p, x.dtype)
    torch.manual_seed(2)
    assert torch.equal(packed_dropout(x, p, True), x * keep.mul_(scale))


@pytest.mark.parametrize(("p", "bits"), [(0.5, 1), (0.25, 2), (0.75, 2), (0.125, 4), (3 / 256, 8)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_byte_lanes_follow_the_random_stream(p: float, bits: int, dtype: torch.dtype) -> None:
    """Element i of a mask is lane i of the drawn bytes (lane j of a byte = bits j*b .. j*b+b-1,
    least significant first), kept iff its value >= p * 2^b; scaled masks hold the scale there."""
    n = 1000
    torch.manual_seed(4)
    state = torch.get_rng_state()
    (keep,), scale = dropout_masks([(n,)], p, dtype)
    (scaled,), _ = (torch.set_rng_state(state), dropout_masks([(n,)], p, dtype, scaled=True))[1]
    torch.set_rng_state(state)
    per_byte = 8 // bits
    n_words = (-(-n // per_byte) + 7) // 8
    data = torch.empty(n_words, dtype=torch.int64).random_(-(2**63), None).view(torch.uint8).long()
    lanes = (data.unsqueeze(1) >> torch.arange(0, 8, bits)) & ((1 << bits) - 1)  # [bytes, 8 / b]
    ref = (lanes.flatten()[:n] >= round(p * (1 << bits))).to(dtype)
    assert scale == pytest.approx(1 / (1 - p)) and torch.equal(keep, ref)
    assert torch.equal(scaled, ref * torch.tensor(scale, dtype=dtype))
