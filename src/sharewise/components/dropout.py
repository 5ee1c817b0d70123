"""Dropout whose mask is cheap to draw on a CPU (used after every core layer)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

# (bits per element, dropped lane values, lane value of a kept element, device) -> [256] table
_TABLES: dict[tuple, Tensor] = {}
# one table entry holds the 8 // bits lanes of a byte as that many uint8 values
_PACKED = {1: torch.int64, 2: torch.int32, 4: torch.int16, 8: torch.uint8}  # bits -> entry dtype


def _lane_bits(p: float) -> int | None:
    """The fewest bits b in {1, 2, 4, 8} with p * 2^b an integer (p = 0.5: 1 bit), else None."""
    for b in (1, 2, 4, 8):
        if p * (1 << b) == round(p * (1 << b)):
            return b
    return None


def _keep_table(bits: int, dropped: int, kept: int, device: torch.device) -> Tensor:
    """Entry v: the keep values of the 8 // bits lanes of byte v (``kept`` where the lane value
    is >= dropped, else 0) as that many uint8 packed into one integer (``_PACKED``), so one
    1-D ``index_select`` expands a random byte into its lanes' mask bytes. Measured 2.1-2.3x
    faster than a ``[256, 8 // bits]`` float table (whose rows are copied one index at a time)
    including the uint8 -> float conversion, at 20,480 and 81,920 bytes (one thread)."""
    key = (bits, dropped, kept, device)
    table = _TABLES.get(key)
    if table is None:
        shifts = torch.arange(0, 8, bits, device=device)
        lanes = (torch.arange(256, device=device).unsqueeze(1) >> shifts) & ((1 << bits) - 1)  # [256, 8/bits]
        keep = ((lanes >= dropped) * kept).to(torch.uint8).contiguous()  # little-endian lane order
        table = _TABLES[key] = keep.view(_PACKED[bits]).reshape(256)
    return table


def _n_words(n: int, bits: int | None) -> int:
    """How many 64-bit random words a mask of n elements draws."""
    if bits is None:
        return (n + 3) // 4  # 16-bit lanes
    per_byte = 8 // bits
    return ((n + per_byte - 1) // per_byte + 7) // 8


def _numel(shape: torch.Size | tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def dropout_mask(shape: torch.Size | tuple[int, ...], p: float, dtype: torch.dtype,
                 device: torch.device | str = "cpu") -> tuple[Tensor, float]:
    """A 0/1 keep mask of ``shape`` (in ``dtype``) and the scale 1 / keep probability.

    On a CPU ``bernoulli_`` costs about 25 ns per element, half of a stacked training step.
    Here 64-bit draws of the global RNG (so ``torch.manual_seed`` reproduces them; the full
    64-bit range, which needs no modulo) are cut into lanes:

    - p a multiple of 2^-b for b in {1, 2, 4, 8} (p = 0.5: one bit per element): b-bit lanes,
      an element kept iff its lane value >= p * 2^b, so the drop probability is exactly p; each
      random byte becomes 8 / b mask entries through a 256-row table (one ``index_select``:
      measured 4.5x faster than the 16-bit lanes below at p = 0.5).
    - otherwise 16-bit lanes u, kept iff ``u >= round(p * 2^16)``: the drop probability is p
      rounded to a multiple of 2^-16 (off by at most 7.7e-6); these masks are bit-identical to
      the ones of earlier versions (tested).

    The byte-table masks (p = 0.5, 0.25, ...) differ from earlier versions' 16-bit masks for the
    same seed (same distribution); runs made before are reproducible with those versions only.

    Needs ``0 < p < 1`` after rounding (callers handle 0 and 1).
    """
    keeps, scale = dropout_masks([shape], p, dtype, device)
    return keeps[0], scale


def dropout_masks(shapes: Sequence[torch.Size | tuple[int, ...]], p: float, dtype: torch.dtype,
                  device: torch.device | str = "cpu", scaled: bool = False) -> tuple[list[Tensor], float]:
    """The masks of consecutive ``dropout_mask(shape, p, ...)`` calls, one per shape, bit for bit
    (tested), from one draw of the global RNG: each mask takes the words its own call would have
    drawn. A chain of layers (parallel ordering, soft ordering's depths) draws all its masks
    with one ``random_``, one index conversion and one table lookup instead of one of each per
    layer: at the LibMTL workload's sizes (``[640, 64]`` per layer) these calls cost about as
    much as the GEMMs.

    ``scaled``: the masks hold 0 and the scale (1 / keep probability) instead of 0 and 1, as
    ``keep.mul_(scale)`` would give them (for the byte-table lanes the scale is part of the
    table, one pass less); the returned scale is then the one applied.
    """
    device = torch.device(device)
    sizes = [_numel(shape) for shape in shapes]
    bits = _lane_bits(p)
    counts = [_n_words(n, bits) for n in sizes]
    words = torch.empty(sum(counts), dtype=torch.int64, device=device).random_(-(2**63), None)
    starts = [0]
    for c in counts:
        starts.append(starts[-1] + c)
    keeps: list[Tensor] = []
    if bits is not None:
        dropped = round(p * (1 << bits))
        per_byte = 8 // bits
        scale = (1 << bits) / ((1 << bits) - dropped)
        # A scale that is an integer (p = 0.5: 2) is part of the table; any other is one multiply.
        baked = scaled and scale == int(scale)
        table = _keep_table(bits, dropped, int(scale) if baked else 1, device)
        # int32 indices: the uint8 -> int64 conversion alone took ~40 % of a lookup's time.
        per_word = 64 // bits
        whole_words = all(n % per_word == 0 for n in sizes[:-1])  # no unused lanes between masks
        if whole_words:
            index = words.view(torch.uint8).int()
        else:  # each mask's own bytes, back to back
            index = torch.cat([words[a:b].view(torch.uint8)[:(n + per_byte - 1) // per_byte]
                               for a, b, n in zip(starts, starts[1:], sizes)]).int()
        flat = table.index_select(0, index).view(torch.uint8).to(dtype)  # one value per lane
        if scaled and not baked:
            flat.mul_(scale)
        if whole_words:
            return [flat[per_word * a: per_word * a + n].view(shape)
                    for a, n, shape in zip(starts, sizes, shapes)], scale
        offset = 0
        for n, shape in zip(sizes, shapes):
            keeps.append(flat[offset: offset + n].view(shape))
            offset += -(-n // per_byte) * per_byte
        return keeps, scale
    dropped = round(p * 65536)  # of the 65536 values of u
    scale = 65536.0 / (65536 - dropped)
    # The same bits as random_(-2**63, 2**63 - 1) (tested), 15 % faster on a CPU: a full-range draw
    # skips a 64-bit modulo per word, and that modulo only flipped the sign bit (it differs in the
    # one draw of 2^64 that is all ones).
    words.bitwise_xor_(-(2**63))
    for a, b, n, shape in zip(starts, starts[1:], sizes, shapes):
        u = words[a:b].view(torch.int16)  # uniform on [-2^15, 2^15)
        u = (u if n % 4 == 0 else u[:n]).view(shape)
        # The comparison writes 1.0 / 0.0 straight into a tensor of the mask's dtype: measured 8x
        # faster on a CPU than a bool result converted with .to() (bool outputs and bool casts are
        # not vectorised there), with the same values.
        keep = torch.ge(u, dropped - 32768, out=torch.empty(shape, dtype=dtype, device=device))
        keeps.append(keep.mul_(scale) if scaled else keep)
    return keeps, scale


def packed_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Inverted dropout like ``F.dropout``, with the mask of :func:`dropout_mask`: kept elements
    are scaled by the exact inverse of the keep probability, so E[dropout(x)] = x as in ``F.dropout``."""
    if not training or p == 0.0:
        return x
    if round(p * 65536) >= 65536:
        return x * 0.0
    (keep,), _ = dropout_masks([x.shape], p, x.dtype, x.device, scaled=True)
    return x * keep
