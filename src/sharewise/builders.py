"""Config -> modules: turns a validated RunConfig and its tasks into a MultiTaskModel."""

from __future__ import annotations

from collections.abc import Sequence
import math
from functools import partial
from typing import Any

import torch

from torch import Tensor, nn

from sharewise.components.conv import ConvPoolLayer
from sharewise.components.layer_bank import DenseLayerBank, LayerBank, ModuleLayerBank
from sharewise.components.usage import ParameterUse
from sharewise.components.task_modules import ChannelPad, Identity, StackedDense
from sharewise.config.schema import RunConfig
from sharewise.errors import ConfigError
from sharewise.model import MultiTaskModel
from sharewise.sharing import CoreSpec, create_scheme
from sharewise.tasks.spec import TaskData


def _conv_bank(n: int, channels: int, kernel_size: int, pool: bool) -> LayerBank:
    return ModuleLayerBank([ConvPoolLayer(channels, kernel_size, pool) for _ in range(n)])


class FeatureHeads(nn.Module):
    """Flatten (or global-average) the core's features, then the stacked per-task linear heads."""

    def __init__(self, heads: StackedDense, pool: bool) -> None:
        super().__init__()
        self.heads, self.pool = heads, pool

    def parameter_users(self, tasks: Sequence[int] | None = None) -> list[ParameterUse]:
        return self.heads.parameter_users(tasks)

    def forward(self, h: Tensor, tasks: Sequence[int] | None = None) -> Tensor:
        if self.pool:
            h = h.mean(dim=(-2, -1))  # [T', B, C]
        return self.heads(h.flatten(2), tasks)


def _encoders(cfg: RunConfig, tasks: Sequence[TaskData]) -> tuple[nn.Module, tuple[int, ...]]:
    """The task encoders and the per-sample shape they hand to the core."""
    enc, core_cfg = cfg.model.encoder, cfg.model.core
    shapes = sorted({tuple(t.input_shape) for t in tasks})
    if enc.kind == "dense":
        in_dims = [int(t.x_train[0].numel()) for t in tasks]
        return StackedDense(in_dims, core_cfg.width, enc.activation, frozen=enc.frozen), (core_cfg.width,)
    if len(shapes) != 1:
        raise ConfigError(f"model.encoder.kind={enc.kind} needs every task's inputs to have one shape, got "
                          f"{[list(s) for s in shapes]}; use model.encoder.kind=dense for tasks of different widths")
    shape = shapes[0]
    if enc.kind == "identity":
        if core_cfg.kind == "dense" and len(shape) == 1 and shape[0] != core_cfg.width:
            raise ConfigError(f"model.encoder.kind=identity feeds the inputs ({shape[0]} features) straight into "
                              f"the core, so model.core.width must be {shape[0]}, got {core_cfg.width}")
        return Identity(), shape
    if len(shape) != 3:  # channel_pad
        raise ConfigError(f"model.encoder.kind=channel_pad needs image inputs [C, H, W], got {list(shape)}")
    if shape[0] > core_cfg.width:
        raise ConfigError(f"images have {shape[0]} channels, more than model.core.width={core_cfg.width}")
    return ChannelPad(core_cfg.width), (core_cfg.width, *shape[1:])


def _make_bank_fn(cfg: RunConfig, feature_shape: tuple[int, ...]) -> Any:
    core_cfg = cfg.model.core
    if core_cfg.kind == "dense":
        return partial(DenseLayerBank, width=core_cfg.width, activation=core_cfg.activation)
    if len(feature_shape) != 3:
        raise ConfigError(f"a conv core (model.core.kind=conv) needs image inputs [C, H, W] at the core, got "
                          f"{list(feature_shape)}; use model.encoder.kind=channel_pad with image tasks")
    return partial(_conv_bank, channels=core_cfg.width, kernel_size=core_cfg.kernel_size, pool=core_cfg.pool)


def build_model(cfg: RunConfig, tasks: Sequence[TaskData]) -> MultiTaskModel:
    """Encoders E_t, the scheme-arranged core, and heads D_t for ``tasks``.

    The heads' input width is found by running the encoders and core once on a zero probe, so
    any scheme (including ones with their own networks, e.g. Gumbel-Matrix's) gets heads that fit.
    """
    encoders, feature_shape = _encoders(cfg, tasks)
    core = CoreSpec(make_bank=_make_bank_fn(cfg, feature_shape), depth=cfg.model.core.depth,
                    feature_shape=feature_shape, dropout=cfg.model.core.dropout)
    scheme = create_scheme(cfg.scheme, core, len(tasks), seed=cfg.seed, options=cfg.scheme_options)
    scheme.eval()
    with torch.no_grad():
        out_shape = tuple(scheme(torch.zeros(1, 2, *feature_shape), [0]).shape[2:])
    scheme.train()
    head = cfg.model.head
    out_dims = [t.n_outputs for t in tasks]
    if head.shared and len(set(out_dims)) != 1:
        raise ConfigError(f"model.head.shared=true needs every task to have the same output width, got {out_dims}")
    pool = head.pool == "mean" and len(out_shape) == 3
    head_in = out_shape[0] if pool else math.prod(out_shape)
    heads = StackedDense([head_in] * len(tasks), max(out_dims), "linear", shared=head.shared)
    return MultiTaskModel(encoders, scheme, FeatureHeads(heads, pool))
