"""Config -> modules: turns a validated RunConfig and its tasks into a MultiTaskModel."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Any

import torch

from torch import Tensor, nn

from sharewise.assemble import finish_model, probe_feature_shape, task_encoders, user_core
from sharewise.components.conv import ConvPoolLayer
from sharewise.components.layer_bank import DenseLayerBank, LayerBank, ModuleLayerBank
from sharewise.components.task_modules import ChannelPad, FeatureHeads, Identity, StackedDense
from sharewise.config.components import has_component, instantiate
from sharewise.config.schema import RunConfig
from sharewise.errors import ConfigError
from sharewise.model import MultiTaskModel
from sharewise.sharing import CoreSpec, create_scheme
from sharewise.tasks.spec import TaskData


def _conv_bank(n: int, channels: int, kernel_size: int, pool: bool, init: str = "torch") -> LayerBank:
    return ModuleLayerBank([ConvPoolLayer(channels, kernel_size, pool, init) for _ in range(n)])


def _encoders(cfg: RunConfig, tasks: Sequence[TaskData]) -> tuple[nn.Module, tuple[int, ...]]:
    """The task encoders and the per-sample shape they hand to the core."""
    enc, core_cfg = cfg.model.encoder, cfg.model.core
    shapes = sorted({tuple(t.input_shape) for t in tasks})
    if enc.kind == "dense":
        in_dims = [math.prod(t.input_shape) for t in tasks]
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
    if len(shape) == 1 and core_cfg.kind == "dense":  # channel_pad of feature vectors: zero-pad the features
        if shape[0] > core_cfg.width:
            raise ConfigError(f"the tasks have {shape[0]} features, more than model.core.width={core_cfg.width}")
        return ChannelPad(core_cfg.width), (core_cfg.width,)
    if len(shape) != 3:  # channel_pad
        raise ConfigError(f"model.encoder.kind=channel_pad needs image inputs [C, H, W] (or feature vectors [d] "
                          f"with a dense core), got {list(shape)}")
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
    return partial(_conv_bank, channels=core_cfg.width, kernel_size=core_cfg.kernel_size, pool=core_cfg.pool,
                   init=core_cfg.init)


def uses_components(cfg: RunConfig) -> bool:
    """True if any module position of ``cfg`` names a user module (``_component_``)."""
    return (has_component(cfg.model.encoder) or has_component(cfg.model.head)
            or cfg.model.core.blocks is not None or has_component(cfg.scheme_options))


def _component_blocks(value: Any) -> list[nn.Module]:
    built = instantiate(value, "model.core.blocks")
    if isinstance(built, nn.Module) and not isinstance(built, (nn.ModuleList, nn.Sequential)):
        raise ConfigError(f"model.core.blocks: the component returned one {type(built).__name__}; give a list of "
                          f"D block specs, or a component that returns a list / nn.ModuleList of blocks")
    return list(built)


def _build_with_components(cfg: RunConfig, tasks: Sequence[TaskData]) -> MultiTaskModel:
    """The user-module path: instantiate every ``_component_`` and assemble (generic banks)."""
    n_outputs = [t.n_outputs for t in tasks]
    if has_component(cfg.model.encoder):
        shapes = [tuple(t.input_shape) for t in tasks]
        encoders: nn.Module = task_encoders(instantiate(cfg.model.encoder, "model.encoder"), shapes)
        feature_shape = probe_feature_shape(encoders, shapes)
    elif cfg.model.encoder.kind == "identity":  # the built-in core-width check does not apply to user blocks
        encoders = Identity()
        feature_shape = probe_feature_shape(encoders, [tuple(t.input_shape) for t in tasks])
    else:
        encoders, feature_shape = _encoders(cfg, tasks)
    blocks = _component_blocks(cfg.model.core.blocks) if cfg.model.core.blocks is not None else None
    if blocks is not None:
        core = user_core(blocks, feature_shape, cfg.model.core.dropout)
    else:
        core = CoreSpec(make_bank=_make_bank_fn(cfg, feature_shape), depth=cfg.model.core.depth,
                        feature_shape=feature_shape, dropout=cfg.model.core.dropout)
    options = {k: instantiate(v, f"scheme_options.{k}") for k, v in cfg.scheme_options.items()}
    heads = instantiate(cfg.model.head, "model.head") if has_component(cfg.model.head) else None
    head_cfg = cfg.model.head if heads is None else None
    return finish_model(cfg.scheme, encoders, core, n_outputs, heads=heads, options=options, seed=cfg.seed,
                        head_pool=head_cfg.pool if head_cfg else "mean",
                        shared_head=head_cfg.shared if head_cfg else False)


def build_model(cfg: RunConfig, tasks: Sequence[TaskData]) -> MultiTaskModel:
    """Encoders E_t, the scheme-arranged core, and heads D_t for ``tasks``.

    The heads' input width is found by running the encoders and core once on a zero probe, so
    any scheme (including ones with their own networks, e.g. Gumbel-Matrix's) gets heads that fit.
    Built-in networks take the fast banks (dense layers as one GEMM); a config naming user
    modules (``_component_``) goes through :mod:`sharewise.assemble`.
    """
    if uses_components(cfg):
        return _build_with_components(cfg, tasks)
    encoders, feature_shape = _encoders(cfg, tasks)
    core = CoreSpec(make_bank=_make_bank_fn(cfg, feature_shape), depth=cfg.model.core.depth,
                    feature_shape=feature_shape, dropout=cfg.model.core.dropout)
    model = finish_model(cfg.scheme, encoders, core, [t.n_outputs for t in tasks], options=cfg.scheme_options,
                         seed=cfg.seed, head_pool=cfg.model.head.pool, shared_head=cfg.model.head.shared)
    if isinstance(encoders, ChannelPad) and cfg.model.core.kind == "conv" and model.scheme.reads_input_by_layers:
        feed_unpadded(model)
    return model


def feed_unpadded(model: MultiTaskModel) -> None:
    """Hand the built-in conv core the unpadded image: ``ChannelPad`` stops padding and every
    ``ConvPoolLayer`` of the scheme reads a narrower input as zero-padded (the same network; the
    padded channels are never multiplied). Only for schemes that read their input by layers."""
    if not (isinstance(model.encoders, ChannelPad) and model.scheme.reads_input_by_layers):
        raise ValueError("feed_unpadded needs a ChannelPad encoder and a scheme that reads its input by layers")
    model.encoders.lazy = True
    for module in model.scheme.modules():
        if isinstance(module, ConvPoolLayer):
            module.zero_extends_input = True
