"""Banks over the user's own blocks: copies of D given modules, addressed like built-in layers.

A scheme asks its :class:`~sharewise.sharing.CoreSpec` for a bank whose layer ``i`` is a copy
of core block ``block_of_layer[i]`` (for single-task columns ``[0..D-1] * T``; for a branched
tree, block d once per group at depth d). The first layer that uses block d *is* the user's
module (so ``soft_ordering`` over four given blocks trains those four modules, and pretrained
weights are used as given); every further use is a ``copy.deepcopy`` of it (same starting
weights: the paper's single-task networks and branches start from the same backbone).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from torch import nn

from sharewise.components.layer_bank import ModuleLayerBank
from sharewise.errors import ConfigError


def block_bank(blocks: Sequence[nn.Module], block_of_layer: Sequence[int]) -> ModuleLayerBank:
    """A :class:`ModuleLayerBank` whose layer i is (a copy of) ``blocks[block_of_layer[i]]``."""
    used: set[int] = set()
    layers: list[nn.Module] = []
    for i, d in enumerate(block_of_layer):
        if not 0 <= int(d) < len(blocks):
            raise ConfigError(f"layer {i} asks for core block {d}, but only {len(blocks)} blocks were given")
        layers.append(blocks[d] if d not in used else copy.deepcopy(blocks[d]))
        used.add(int(d))
    return ModuleLayerBank(layers, names=[_name(blocks[d], d) for d in block_of_layer])


def _name(block: nn.Module, d: int) -> str:
    return f"block {d} ({type(block).__name__})"


def check_blocks(blocks: object) -> list[nn.Module]:
    """The user's blocks as a list of modules, or a ConfigError saying what was given instead."""
    if isinstance(blocks, nn.Module) and not isinstance(blocks, (nn.ModuleList, nn.Sequential)):
        raise ConfigError(f"blocks: expected a sequence of D modules (a list, nn.ModuleList or nn.Sequential of "
                          f"blocks), but got one {type(blocks).__name__}; pass [block_1, ..., block_D]")
    try:
        out = list(blocks)  # type: ignore[call-overload]
    except TypeError:
        raise ConfigError(f"blocks: expected a sequence of modules, but got {type(blocks).__name__}") from None
    if not out:
        raise ConfigError("blocks: expected at least one block, but got an empty sequence")
    bad = [f"{i}: {type(b).__name__}" for i, b in enumerate(out) if not isinstance(b, nn.Module)]
    if bad:
        raise ConfigError(f"blocks: every block must be a torch.nn.Module, but got {', '.join(bad)}")
    return out
