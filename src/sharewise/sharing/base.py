"""The one contract every sharing scheme follows, so the trainer never branches on a scheme.

A scheme maps the encoders' outputs of several tasks, stacked as ``[T', B, *f]``, to the core's
outputs ``[T', B, *f']``. ``tasks`` names which of the model's T tasks the leading axis holds
(``None``: all of them, in order), so the same module serves the joint training step (all
tasks stacked), the paper's alternating step (one task at a time) and evaluation.

Everything a scheme needs per step goes through a method here: schedules (``on_update``),
extra loss terms (``regularizer``), per-step numbers to log (``step_metrics``), architecture
parameters in their own optimiser group (``architecture_parameters``) and their learning rate
(``architecture_lr``), which tasks own which parameter blocks whatever the forward pass
(``task_stacked_parameters``, ``parameter_owners``: updates of other tasks leave them alone),
which tasks used which
parameter blocks in the latest forward pass (``parameter_users``, read by structure-aware
gradient aggregation, see ``sharewise.training.aggregation``), what it learned
(``learned_structure``, JSON-serialisable, written into ``summary.json``) and how that is drawn
(``render_structure``, a class method: reports call it on a run directory's data, with no model),
and one task's network alone as a plain module (``export_task``, used by ``sharewise export``).
New tasks over a finished run's frozen shared blocks (``sharewise adapt``) go through
``adapted_options`` (the scheme's options for the new tasks) and ``adopt_shared`` (copy and
freeze what the tasks share; ``task_state_names`` says what belongs to tasks instead).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from sharewise.components.usage import ParameterUse, used_by_all


@dataclass(frozen=True)
class StructureFigure:
    """One drawing of a scheme's structure: ``name`` is its file stem (``plots/<name>.png``)."""

    name: str
    figure: Any  # a matplotlib Figure
    caption: str


class SharingScheme(nn.Module, abc.ABC):
    """Base class for sharing schemes (see module docstring for the contract)."""

    #: True if a task's output depends on other tasks' features (cross-stitch, NDDR), so that
    #: every task also uses the other tasks' encoders (``MultiTaskModel.parameter_users``).
    mixes_tasks: bool = False

    #: True if the scheme hands its input ``x`` only to its bank's layers (no concatenation,
    #: identity path or shape check of ``x`` itself), so a conv core whose layers read a narrower
    #: input as zero-padded can be fed the unpadded image (``ChannelPad(lazy=True)``).
    reads_input_by_layers: bool = False

    def __init__(self, n_tasks: int) -> None:
        super().__init__()
        self.n_tasks = n_tasks

    @abc.abstractmethod
    def forward(self, x: Tensor, tasks: Sequence[int] | None = None) -> Tensor:
        """x [T', B, *f] -> [T', B, *f']."""

    def architecture_parameters(self) -> list[nn.Parameter]:
        """Parameters that decide *how* tasks share (own optimiser group, own learning rate)."""
        return []

    def task_stacked_parameters(self) -> list[nn.Parameter]:
        """Parameters ``[T, ...]`` whose slice t belongs to task t alone (per-task logits). The
        optimiser gives each slice its own state and moves it only in updates that involve task
        t (alternating mode); see ``sharewise.training.task_optim``."""
        return []

    def parameter_owners(self) -> list[ParameterUse]:
        """Blocks that belong to some tasks only, whatever the forward pass: ``users [T, n]``
        over all T tasks (the layout of ``parameter_users``). An update that involves none of a
        block's owners leaves it and its optimiser state unchanged (``sharewise.training.
        task_optim``), as the paper's separate per-task variables would be. Default: nothing
        beyond ``task_stacked_parameters()``. Declare static ownership only: blocks whose users
        change with a sampled allocation (Gumbel-Matrix components) are shared."""
        return []

    def architecture_lr(self, lr: float) -> float:
        """The learning rate of ``architecture_parameters()`` given the weights' ``lr`` (the
        optimiser uses it unless ``train.arch_lr`` is set). Default: the same rate."""
        return lr

    def on_update(self, n_updates: int) -> None:
        """Called by the trainer before every optimiser update with the number of updates made so
        far (one per step in joint mode, one per task and step in alternating mode), so schedules
        such as a temperature are a function of it and need no state of their own."""

    def regularizer(self) -> Tensor | None:
        """An extra loss term added to the summed task losses (e.g. a budget penalty)."""
        return None

    def step_metrics(self) -> dict[str, float]:
        """Numbers to log with each evaluation (temperature, penalty, ...)."""
        return {}

    def parameter_users(self, tasks: Sequence[int] | None = None) -> list[ParameterUse]:
        """Which of the stacked ``tasks`` used which blocks of which parameters in the latest
        forward pass over them. Default: every parameter is used by every task (hard sharing,
        soft ordering, cross-stitch: each task's output depends on all of them). Schemes whose
        tasks use subsets (copies, groups, allocated components) declare it."""
        return used_by_all(self.parameters(), len(task_list(tasks, self.n_tasks)))

    def structure_warnings(self, task_names: Sequence[str]) -> list[str]:
        """Problems with what was learned that the user should see (run log and summary.json),
        e.g. a task left without any active component in a layer."""
        return []

    def export_task(self, task: int) -> nn.Module:
        """What task ``task`` computes in evaluation, as a plain module ``[B, *f] -> [B, *f']``
        holding only the parameters that task uses (``sharewise.components.plain``; no task axis,
        no sharewise import needed to run it). Its output must equal ``self.eval()(x[None],
        [task])[0]``. Default: an :class:`~sharewise.errors.ExportError` naming the scheme."""
        from sharewise.errors import ExportError

        raise ExportError(f"scheme {type(self).__name__} does not define export_task, so its tasks cannot be "
                          f"exported as plain modules; implement SharingScheme.export_task for it")

    def task_state_names(self) -> set[str]:
        """Names (in ``state_dict()``) of the entries that belong to tasks, not to the shared
        blocks: what ``sharewise adapt`` builds fresh for new tasks. Default: the task-stacked
        parameters (per-task logits)."""
        ids = {id(p) for p in self.task_stacked_parameters()}
        return {n for n, p in self.named_parameters() if id(p) in ids}

    @classmethod
    def adapted_options(cls, options: Mapping[str, Any], parent_structure: Mapping[str, Any],
                        new_tasks: Sequence[str], attach: Sequence[str] | None) -> dict[str, Any]:
        """The scheme options for new tasks adapted over a parent run (``parent_structure``: its
        ``summary.json`` structure, with ``tasks``). Default: the parent's options unchanged."""
        return dict(options)

    def adopt_shared(self, parent_state: Mapping[str, Any], parent_structure: Mapping[str, Any],
                     attach: Sequence[str] | None) -> list[str]:
        """Copy the parent run's shared blocks (``parent_state``: its scheme's state dict) into
        this scheme, built for the new tasks, and freeze them; returns the names frozen.

        Default: every entry but ``task_state_names()`` is shared and has the same shape for any
        number of tasks (banks, modular networks). Schemes whose blocks belong to tasks
        (single-task copies, cross-stitch columns) raise :class:`~sharewise.errors.AdaptError`.
        """
        import torch

        from sharewise.errors import AdaptError

        own = self.task_state_names()
        state = self.state_dict()
        frozen = []
        for name, value in state.items():
            if name in own:
                continue
            if name not in parent_state:
                raise AdaptError(f"the parent run's {type(self).__name__} has no {name!r}; adapt needs the same "
                                 f"model and scheme as the parent (its config.yaml)")
            given = parent_state[name]
            if tuple(given.shape) != tuple(value.shape):
                raise AdaptError(f"the parent run's {name!r} has shape {list(given.shape)} but the new tasks' model "
                                 f"needs {list(value.shape)}: the new tasks reach the shared blocks with other "
                                 f"features; give them the parent's input kind and model section")
            with torch.no_grad():
                value.copy_(given)
            frozen.append(name)
        freeze_except(self, own)
        return frozen

    def learned_structure(self) -> dict[str, Any]:
        """What the scheme learned or fixed, as plain JSON data (soft orders, permutations...)."""
        return {}

    @classmethod
    def render_structure(cls, structure: Mapping[str, Any], records: Sequence[Mapping[str, Any]] = ()
                         ) -> tuple[list[StructureFigure], dict[str, Any]]:
        """Draw what ``learned_structure()`` wrote.

        ``structure`` is ``summary.json``'s (with ``tasks``: the task names by index) and
        ``records`` are ``metrics.jsonl``'s, where ``step_metrics`` were logged over training.
        Returns the figures and the part of ``structure`` they do not show, which the report
        renders as plain data (per-task matrices as heatmaps, scalars as a table, the rest as
        JSON). A class method, so a finished run is drawn without building its model. Default:
        no figures, everything as data.
        """
        return [], dict(structure)


def freeze_except(module: nn.Module, own: set[str]) -> None:
    """Freeze every parameter of ``module`` not named in ``own``; batch norms whose parameters
    are all frozen stop updating their running statistics (momentum 0), so the shared blocks stay
    bit-identical while the new tasks train over them."""
    for name, p in module.named_parameters():
        if name not in own:
            p.requires_grad_(False)
    for sub in module.modules():
        if isinstance(sub, nn.modules.batchnorm._BatchNorm) and not any(p.requires_grad for p in sub.parameters()):
            sub.momentum = 0.0


def task_list(tasks: Sequence[int] | None, n_tasks: int) -> list[int]:
    """The task indices a stacked batch holds (``None`` means all tasks in order)."""
    return list(range(n_tasks)) if tasks is None else [int(t) for t in tasks]
