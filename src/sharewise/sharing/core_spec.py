"""What a sharing scheme arranges: how to build the core's layers, its depth, dropout, shapes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sharewise.components.layer_bank import LayerBank


@dataclass(frozen=True)
class CoreSpec:
    """The core of D shared layers between task encoders and heads.

    ``make_bank(n)`` builds a bank of ``n`` fresh layers of the core's kind (D for the shared
    schemes, T*D for single-task copies); ``feature_shape`` is one sample's shape at the core's
    input (without batch axes); ``dropout`` is the drop probability after every core layer.
    """

    make_bank: Callable[[int], LayerBank]
    depth: int
    feature_shape: tuple[int, ...]
    dropout: float = 0.0


def check_reorderable(bank: LayerBank, feature_shape: tuple[int, ...], depth: int, scheme: str, *,
                      identity: bool = False) -> None:
    """Raise ShapeError unless every layer can be applied at every depth.

    Soft and permuted ordering apply each layer at each depth, so a layer's output must be a
    valid input for every layer and all layers must agree on the output shape at each depth.
    The check runs the layers on a zero probe of two samples; it names the first layer that
    breaks the rule and the shapes involved. With ``identity`` (soft ordering's identity
    candidate, Sec. 4.4) the layers' output must also equal their input at every depth, since
    the identity passes its input through unchanged (a pooled conv core breaks this).
    """
    import torch

    from sharewise.errors import ShapeError

    probe = torch.zeros(2, *feature_shape)
    with torch.no_grad():
        for k in range(depth):
            shapes = []
            for j in range(bank.n_layers):
                try:
                    out = bank.forward_one(j, probe)
                except RuntimeError as err:
                    raise ShapeError(
                        f"scheme {scheme!r} applies every core layer at every depth, but core layer "
                        f"{j} cannot take an input of shape {list(probe.shape[1:])} at depth {k}: "
                        f"{str(err).splitlines()[0]}. Make every core layer's output shape a valid "
                        f"input to every core layer (for dense layers: output width = input width)."
                    ) from None
                shapes.append(tuple(out.shape[1:]))
            if len(set(shapes)) > 1:
                raise ShapeError(
                    f"scheme {scheme!r} mixes the outputs of all core layers at depth {k}, but they "
                    f"differ in shape: {', '.join(f'layer {j}: {list(s)}' for j, s in enumerate(shapes))}. "
                    f"Give every core layer the same output shape."
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
                    f"shape, but core layer 0 maps {list(feature_shape)} -> {list(shapes[0])}. "
                    f"Set the core width equal to the encoder width (or use scheme 'parallel')."
                )
            probe = bank.forward_one(0, probe).detach()
