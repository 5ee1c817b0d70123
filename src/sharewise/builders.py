"""Config -> modules: turns a validated RunConfig and its tasks into a MultiTaskModel."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from torch import Tensor, nn

from sharewise.components.conv import ConvPoolLayer
from sharewise.components.layer_bank import DenseLayerBank, LayerBank, ModuleLayerBank
from sharewise.components.task_modules import ChannelPad, Identity, StackedDense
from sharewise.config.schema import RunConfig
from sharewise.errors import ConfigError
from sharewise.model import MultiTaskModel
from sharewise.sharing import CoreSpec, create_scheme
from sharewise.tasks.spec import TaskData


def _conv_bank(n: int, channels: int, kernel_size: int, pool: bool) -> LayerBank:
    return ModuleLayerBank([ConvPoolLayer(channels, kernel_size, pool) for _ in range(n)])


class ConvHeads(nn.Module):
    """Flatten (or global-average) conv features, then the stacked per-task linear heads."""

    def __init__(self, heads: StackedDense, pool: str) -> None:
        super().__init__()
        self.heads, self.pool = heads, pool

    def forward(self, h: Tensor, tasks: Sequence[int] | None = None) -> Tensor:
        if self.pool == "mean":
            h = h.mean(dim=(-2, -1))  # [T', B, C]
        return self.heads(h.flatten(2), tasks)


def build_model(cfg: RunConfig, tasks: Sequence[TaskData]) -> MultiTaskModel:
    """Encoders E_t, the scheme-arranged core, and heads D_t for ``tasks``."""
    enc, core_cfg, head = cfg.model.encoder, cfg.model.core, cfg.model.head
    width = core_cfg.width
    in_dims = [int(t.x_train[0].numel()) for t in tasks]
    if core_cfg.kind == "dense":
        if enc.kind == "dense":
            encoders: nn.Module = StackedDense(in_dims, width, enc.activation, frozen=enc.frozen)
        elif enc.kind == "identity":
            if len(set(in_dims)) != 1 or in_dims[0] != width:
                raise ConfigError(f"model.encoder.kind=identity needs every task's input width to equal "
                                  f"model.core.width={width}, got input widths {sorted(set(in_dims))}")
            encoders = Identity()
        else:
            raise ConfigError("model.encoder.kind=channel_pad is for conv cores (model.core.kind=conv)")
        feature_shape: tuple[int, ...] = (width,)
        make_bank = partial(DenseLayerBank, width=width, activation=core_cfg.activation)
        head_in = width
    else:
        shapes = {tuple(t.input_shape) for t in tasks}
        if len(shapes) != 1 or len(next(iter(shapes))) != 3:
            raise ConfigError(f"a conv core needs image inputs [C, H, W] of one shape for every task, got {sorted(shapes)}")
        c, h, w = next(iter(shapes))
        if enc.kind != "channel_pad":
            raise ConfigError("a conv core (model.core.kind=conv) needs model.encoder.kind=channel_pad")
        if c > width:
            raise ConfigError(f"images have {c} channels, more than model.core.width={width}")
        encoders = ChannelPad(width)
        feature_shape = (width, h, w)
        make_bank = partial(_conv_bank, channels=width, kernel_size=core_cfg.kernel_size, pool=core_cfg.pool)
        factor = 2 ** core_cfg.depth if core_cfg.pool else 1
        head_in = width if head.pool == "mean" else width * (h // factor) * (w // factor)
    core = CoreSpec(make_bank=make_bank, depth=core_cfg.depth, feature_shape=feature_shape,
                    dropout=core_cfg.dropout)
    scheme = create_scheme(cfg.scheme, core, len(tasks), seed=cfg.seed, options=cfg.scheme_options)
    out_dims = [t.n_outputs for t in tasks]
    if head.shared and len(set(out_dims)) != 1:
        raise ConfigError(f"model.head.shared=true needs every task to have the same output width, got {out_dims}")
    heads: nn.Module = StackedDense([head_in] * len(tasks), max(out_dims), "linear", shared=head.shared)
    if core_cfg.kind == "conv":
        heads = ConvHeads(heads, head.pool)  # type: ignore[arg-type]
    return MultiTaskModel(encoders, scheme, heads)
