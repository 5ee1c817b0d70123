"""What a sharing scheme arranges: how to build the core's layers, its depth, dropout, shapes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from sharewise.components.layer_bank import LayerBank


@dataclass(frozen=True)
class CoreSpec:
    """The core of D shared layers between task encoders and heads.

    ``make_bank(n)`` builds a bank of ``n`` fresh layers of the core's kind (D for the shared
    schemes, T*D for single-task copies); ``feature_shape`` is one sample's shape at the core's
    input (without batch axes); ``dropout`` is the drop probability after every core layer.

    ``make_block_bank(block_of_layer)`` (optional) builds a bank whose layer i is a fresh copy of
    core block ``block_of_layer[i]``: needed when the D blocks differ (a user's backbone split
    into stages), so that a branched tree gets copies of the right block at each depth. Built-in
    cores have D identical blocks and leave it ``None``. Use :meth:`bank_of_blocks`.
    """

    make_bank: Callable[[int], LayerBank]
    depth: int
    feature_shape: tuple[int, ...]
    dropout: float = 0.0
    make_block_bank: Callable[[Sequence[int]], LayerBank] | None = None

    def bank_of_blocks(self, block_of_layer: Sequence[int]) -> LayerBank:
        """A bank whose layer i is a copy of block ``block_of_layer[i]`` (indices in 0..D-1)."""
        if self.make_block_bank is not None:
            return self.make_block_bank(list(block_of_layer))
        return self.make_bank(len(block_of_layer))

    @classmethod
    def from_blocks(cls, blocks: Sequence[nn.Module], feature_shape: Sequence[int],
                    dropout: float = 0.0) -> CoreSpec:
        """The core made of the user's D blocks (any ``nn.Module`` taking ``[N, *f]``).

        ``make_bank(n)`` lays the blocks out column by column (layer i is block ``i % D``), the
        layout of the single-task, cross-stitch and NDDR columns (task t owns layers
        ``t*D .. t*D+D-1``). See :mod:`sharewise.components.block_bank` for what is copied.
        """
        from sharewise.components.block_bank import block_bank, check_blocks

        given = check_blocks(blocks)
        depth = len(given)
        return cls(make_bank=lambda n: block_bank(given, [i % depth for i in range(n)]), depth=depth,
                   feature_shape=tuple(int(s) for s in feature_shape), dropout=dropout,
                   make_block_bank=lambda ids: block_bank(given, ids))


def column_layers(tasks: Sequence[int], d: int, depth: int) -> list[int]:
    """Bank indices of the given tasks' layer ``d`` when every task owns a column of ``depth``
    layers: task t's column is layers ``t*depth .. t*depth + depth - 1`` (the single-task,
    cross-stitch and NDDR layout; :meth:`CoreSpec.from_blocks` copies blocks this way)."""
    return [int(t) * depth + d for t in tasks]


def column_owner(layer: Any, depth: int) -> Any:
    """The task owning bank layer ``layer`` (an int or an index tensor) in the column layout."""
    return layer // depth


def check_reorderable(bank: LayerBank, feature_shape: tuple[int, ...], depth: int, scheme: str, *,
                      identity: bool = False) -> None:
    """Raise ShapeError unless every layer can be applied at every depth.

    Soft and permuted ordering apply each layer at each depth, so a layer's output must be a
    valid input for every layer and all layers must agree on the output shape at each depth.
    The check runs the layers on a zero probe of two samples (in eval mode, so that the user's
    batch-norm statistics do not move); it names the first layer that breaks the rule (for the
    user's blocks: its class and position) and the shapes involved. With ``identity`` (soft
    ordering's identity candidate, Sec. 4.4) the layers' output must also equal their input at
    every depth, since the identity passes its input through unchanged (a pooled conv core
    breaks this).
    """
    import torch

    probe = torch.zeros(2, *feature_shape)
    was_training = bank.training
    bank.eval()
    try:
        with torch.no_grad():
            _probe_every_depth(bank, probe, feature_shape, depth, scheme, identity)
    finally:
        bank.train(was_training)


def _probe_every_depth(bank: LayerBank, probe: Any, feature_shape: tuple[int, ...], depth: int,
                       scheme: str, identity: bool) -> None:
    from sharewise.errors import ShapeError

    for k in range(depth):
        shapes = []
        for j in range(bank.n_layers):
            try:
                out = bank.forward_one(j, probe)
            except (RuntimeError, ValueError, IndexError, TypeError) as err:
                raise ShapeError(
                    f"scheme {scheme!r} applies every core layer at every depth, but "
                    f"{bank.describe(j)} cannot take an input of shape {list(probe.shape[1:])} at depth {k}: "
                    f"{str(err).splitlines()[0]}. Make every core layer's output shape a valid "
                    f"input to every core layer (for dense layers: output width = input width)."
                ) from None
            shapes.append(tuple(out.shape[1:]))
        if len(set(shapes)) > 1:
            raise ShapeError(
                f"scheme {scheme!r} mixes the outputs of all core layers at depth {k}, but they "
                f"differ in shape: {', '.join(f'{bank.describe(j)}: {list(s)}' for j, s in enumerate(shapes))}. "
                f"Give every core layer the same output shape (e.g. BasicBlock(c, c), stride 1)."
            )
        if identity and shapes[0] != tuple(probe.shape[1:]):
            raise ShapeError(
                f"scheme {scheme!r} with identity: true mixes the identity candidate with the core "
                f"layers at every depth, but at depth {k} the identity gives {list(probe.shape[1:])} "
                f"while the core layers give {list(shapes[0])}. Use core layers that keep the shape "
                f"(for a conv core: model.core.pool=false) or set scheme_options.identity=false."
            )
        if k == 0 and shapes[0] != tuple(feature_shape) and len(shapes[0]) == 1:
            raise ShapeError(
                f"scheme {scheme!r} needs core layers whose output shape equals their input "
                f"shape, but {bank.describe(0)} maps {list(feature_shape)} -> {list(shapes[0])}. "
                f"Set the core width equal to the encoder width (or use scheme 'parallel')."
            )
        probe = bank.forward_one(0, probe).detach()
