"""Any PyTorch blocks, encoders and heads -> a :class:`MultiTaskModel` under any sharing scheme.

This is how a user's own network enters sharewise from Python (and how ``_component_`` entries
of a YAML config enter it, see :mod:`sharewise.builders`)::

    model = assemble_model("soft_ordering", n_outputs=[10, 2], input_shape=[3, 32, 32],
                           blocks=[BasicBlock(16) for _ in range(4)],
                           encoders=nn.Conv2d(3, 16, 3, padding=1))     # one shared encoder

- ``blocks``: D modules taking ``[N, *f]`` (for soft / permuted ordering: mapping a shape to
  itself; for a branched network, single-task, cross-stitch or NDDR columns: any sequence of
  stages). They become a :class:`~sharewise.sharing.CoreSpec` that every registered scheme
  takes, so the scheme, the trainer, the run directory, the report, resume and DDP are the same
  as for the built-in networks.
- ``encoders`` / ``heads``: one module per task (a list) or one module used by every task;
  ``None`` means no encoder (the inputs reach the core as they are) and the built-in linear
  heads (global average pooling first for image features).
- Gumbel-Matrix over the user's components: ``options={"components": [[c11, c12], [c21, c22]]}``
  (then ``blocks`` may be omitted).

The result is checked on a zero probe before it is returned: the encoders must agree on one
feature shape, the blocks must fit the scheme (errors name the block's class and position and
the shapes), and each head must give at least its task's number of outputs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from sharewise.components.task_modules import FeatureHeads, Identity, StackedDense, TaskModules
from sharewise.errors import ConfigError, ShapeError
from sharewise.model import MultiTaskModel
from sharewise.sharing import CoreSpec, SharingScheme, create_scheme

ModuleArg = nn.Module | Sequence[nn.Module] | None
PROBE_ERRORS = (RuntimeError, ValueError, IndexError, TypeError)  # what a module's forward raises on a bad shape


def task_encoders(encoders: ModuleArg, input_shapes: Sequence[tuple[int, ...]]) -> nn.Module:
    """The encoders as a stacked-task module (``None``: identity); one input shape per task."""
    if encoders is None:
        return Identity()
    return TaskModules(encoders, len(input_shapes), role="encoders", in_shapes=input_shapes)


def _input_shapes(input_shape: Sequence[Any], n_tasks: int) -> list[tuple[int, ...]]:
    if len(input_shape) and all(isinstance(s, int) for s in input_shape):
        return [tuple(input_shape)] * n_tasks  # type: ignore[arg-type]
    shapes = [tuple(int(d) for d in s) for s in input_shape]
    if len(shapes) != n_tasks:
        raise ConfigError(f"input_shape: expected one shape for all tasks or one per task ({n_tasks}), "
                          f"but got {len(shapes)} shapes")
    return shapes


@torch.no_grad()
def probe_feature_shape(encoders: nn.Module, input_shapes: Sequence[tuple[int, ...]]) -> tuple[int, ...]:
    """One sample's shape after the encoders; every task's encoder must give the same one."""
    was = encoders.training
    encoders.eval()
    shapes: list[tuple[int, ...]] = []
    try:
        for t, shape in enumerate(input_shapes):
            try:
                shapes.append(tuple(encoders(torch.zeros(1, 2, *shape), [t]).shape[2:]))
            except PROBE_ERRORS as err:
                name = type(encoders.module_of(t)).__name__ if isinstance(encoders, TaskModules) else type(encoders).__name__
                raise ShapeError(f"the encoder of task {t} ({name}) cannot take the task's inputs of shape "
                                 f"{list(shape)}: {str(err).splitlines()[0]}. Give an encoder that takes "
                                 f"[N, {', '.join(map(str, shape))}].") from None
    finally:
        encoders.train(was)
    if len(set(shapes)) > 1:
        listing = ", ".join(f"task {t}: {list(s)}" for t, s in enumerate(shapes))
        raise ShapeError(f"the tasks' encoders must give the core one feature shape, but they give {listing}; "
                         f"make every encoder's output the shape the first core block takes")
    return shapes[0]


def user_core(blocks: Sequence[nn.Module] | None, feature_shape: Sequence[int], dropout: float = 0.0) -> CoreSpec:
    """The CoreSpec over the user's blocks (``None``: a core that says it needs blocks when asked)."""
    if blocks is not None:
        return CoreSpec.from_blocks(blocks, feature_shape, dropout)

    def missing(_: Any) -> Any:
        raise ConfigError("this scheme arranges core blocks, but no blocks were given; pass blocks=[...] "
                          "(from YAML: model.core.blocks), or components for the Gumbel-Matrix schemes")

    return CoreSpec(make_bank=missing, depth=0, feature_shape=tuple(feature_shape), dropout=dropout,
                    make_block_bank=missing)


@torch.no_grad()
def check_chain(core: CoreSpec) -> None:
    """Run the user's blocks in order on a zero probe; name the first block that fails and its input."""
    bank = core.bank_of_blocks(range(core.depth))  # the user's own modules (no copies)
    was = bank.training
    bank.eval()
    h = torch.zeros(2, *core.feature_shape)
    try:
        for d in range(core.depth):
            try:
                h = bank.forward_one(d, h)
            except PROBE_ERRORS as err:
                raise ShapeError(f"{bank.describe(d)} cannot take the output of the block before it, of shape "
                                 f"{list(h.shape[1:])}: {str(err).splitlines()[0]}. Make block {d}'s input match "
                                 f"block {d - 1}'s output (or the encoders' output for block 0).") from None
    finally:
        bank.train(was)


@torch.no_grad()
def probe_scheme(scheme: SharingScheme, feature_shape: Sequence[int]) -> tuple[int, ...]:
    """One sample's shape at the scheme's output (eval mode: no batch-norm statistics move)."""
    was = scheme.training
    scheme.eval()
    try:
        return tuple(scheme(torch.zeros(1, 2, *feature_shape), [0]).shape[2:])
    except PROBE_ERRORS as err:
        raise ShapeError(f"{type(scheme).__name__} cannot run on features of shape {list(feature_shape)}: "
                         f"{str(err).splitlines()[0]}") from None
    finally:
        scheme.train(was)


def builtin_heads(out_shape: Sequence[int], n_outputs: Sequence[int], pool: str = "mean",
                  shared: bool = False) -> FeatureHeads:
    """Stacked per-task linear heads on the core's features (pool ``"mean"``: average image axes)."""
    if shared and len(set(n_outputs)) != 1:
        raise ConfigError(f"model.head.shared=true needs every task to have the same output width, got {list(n_outputs)}")
    use_pool = pool == "mean" and len(out_shape) == 3
    head_in = out_shape[0] if use_pool else math.prod(out_shape)
    stacked = StackedDense([head_in] * len(n_outputs), max(n_outputs), "linear", shared=shared)
    return FeatureHeads(stacked, use_pool)


@torch.no_grad()
def user_heads(heads: nn.Module | Sequence[nn.Module], out_shape: Sequence[int],
               n_outputs: Sequence[int]) -> TaskModules:
    """The user's heads, checked: each must map the core's output to >= its task's outputs."""
    wrapped = TaskModules(heads, len(n_outputs), pad_to=max(n_outputs), role="heads")
    wrapped.eval()
    for t, n in enumerate(n_outputs):
        head = wrapped.module_of(t)
        try:
            y = head(torch.zeros(2, *out_shape))
        except PROBE_ERRORS as err:
            raise ShapeError(f"the head of task {t} ({type(head).__name__}) cannot take the core's output of shape "
                             f"{list(out_shape)}: {str(err).splitlines()[0]}") from None
        if y.dim() != 2 or y.shape[1] < n:
            raise ShapeError(f"the head of task {t} ({type(head).__name__}) must map [N, {', '.join(map(str, out_shape))}] "
                             f"to [N, {n}] (the task's outputs), but it gives {list(y.shape)}; end the head with "
                             f"a flatten and nn.Linear(..., {n})")
    wrapped.train()
    return wrapped


def assemble_model(scheme: str, *, n_outputs: Sequence[int], input_shape: Sequence[Any],
                   blocks: Sequence[nn.Module] | None = None, encoders: ModuleArg = None,
                   heads: ModuleArg = None, options: dict[str, Any] | None = None, dropout: float = 0.0,
                   seed: int = 0, head_pool: str = "mean", shared_head: bool = False) -> MultiTaskModel:
    """A MultiTaskModel of scheme ``scheme`` over the given modules (see the module docstring).

    ``n_outputs[t]``: task t's outputs (classes, 1 for binary, target width for regression), as
    in :class:`~sharewise.tasks.spec.TaskData`; ``input_shape``: one sample's shape (for all
    tasks, or a list with one per task).
    """
    n_tasks = len(n_outputs)
    if n_tasks < 1:
        raise ConfigError("n_outputs: expected one entry per task, but got none")
    shapes = _input_shapes(input_shape, n_tasks)
    enc = task_encoders(encoders, shapes)
    feature_shape = probe_feature_shape(enc, shapes)
    return finish_model(scheme, enc, user_core(blocks, feature_shape, dropout), n_outputs, heads=heads,
                        options=options, seed=seed, head_pool=head_pool, shared_head=shared_head)


def finish_model(scheme: str, encoders: nn.Module, core: CoreSpec, n_outputs: Sequence[int], *,
                 heads: ModuleArg = None, options: dict[str, Any] | None = None, seed: int = 0,
                 head_pool: str = "mean", shared_head: bool = False) -> MultiTaskModel:
    """Encoders + the scheme over ``core`` + heads fitted to the scheme's probed output shape."""
    user_blocks = core.make_block_bank is not None and core.depth > 0
    try:
        arranged = create_scheme(scheme, core, len(n_outputs), seed=seed, options=options)
    except RuntimeError as err:  # a block failed inside a scheme's own probe (e.g. NDDR's channel count)
        if user_blocks:
            check_chain(core)  # names the block and its input shape when the blocks do not chain
        raise ShapeError(f"scheme {scheme!r} cannot run on features of shape {list(core.feature_shape)}: "
                         f"{str(err).splitlines()[0]}") from None
    try:
        out_shape = probe_scheme(arranged, core.feature_shape)
    except ShapeError:
        if user_blocks:
            check_chain(core)
        raise
    if heads is None:
        head_module: nn.Module = builtin_heads(out_shape, n_outputs, head_pool, shared_head)
    else:
        head_module = user_heads(heads, out_shape, n_outputs)
    return MultiTaskModel(encoders, arranged, head_module)
