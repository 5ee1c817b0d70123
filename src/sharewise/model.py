"""The multi-task model: y_t = D_t(scheme(E_t(x_t))), the core arranged by a sharing scheme."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from sharewise.components.usage import ParameterUse, task_rows, used_by_all
from sharewise.sharing.base import SharingScheme, task_list

# State-dict prefix of the scheme before it was renamed from ``core`` (run directories written
# then still load: best.pt, checkpoint.pt).
_OLD_PREFIX, _PREFIX = "core.", "scheme."


class MultiTaskModel(nn.Module):
    """Encoders, a sharing scheme over the core, and heads, all taking stacked tasks.

    Every part takes ``(x [T', B, ...], tasks)`` so the model runs the joint step (all tasks,
    ``tasks=None``), the alternating step and evaluation (a subset) through one code path.
    ``scheme`` is the :class:`SharingScheme` (the builders' ``CoreSpec`` is what it arranges).
    """

    def __init__(self, encoders: nn.Module, scheme: SharingScheme, heads: nn.Module) -> None:
        super().__init__()
        self.encoders, self.scheme, self.heads = encoders, scheme, heads
        self._register_load_state_dict_pre_hook(_rename_old_keys)

    def forward(self, x: Tensor, tasks: Sequence[int] | None = None) -> Tensor:
        h = self.encoders(x, tasks)  # [T', B, *f]
        h = self.scheme(h, tasks)  # [T', B, *f']
        return self.heads(h, tasks)  # [T', B, O]

    def architecture_parameters(self) -> list[nn.Parameter]:
        return self.scheme.architecture_parameters()

    def export_task(self, task: int, n_outputs: int | None = None) -> nn.Module:
        """Task ``task`` alone as a plain module in evaluation mode, ``[B, *in_t] -> [B, n_outputs]``
        on the task's own (unpadded) input: its encoder, ``scheme.export_task`` and its head; its
        output equals ``self.eval()(x[None], [task])[0]``. ``n_outputs`` keeps the task's own
        columns of heads padded to the widest task."""
        from sharewise.components.plain import FirstColumns
        from sharewise.errors import ExportError

        parts = []
        for role, part in (("encoders", self.encoders), ("heads", self.heads)):
            if not callable(getattr(part, "export_task", None)):
                raise ExportError(f"the model's {role} ({type(part).__name__}) define no export_task(task), so "
                                  f"task {task} cannot be cut out of them; wrap them in TaskModules")
        parts = [self.encoders.export_task(task), self.scheme.export_task(task), self.heads.export_task(task)]
        if n_outputs is not None:
            parts.append(FirstColumns(n_outputs))
        return nn.Sequential(*parts).eval()

    def parameter_users(self, tasks: Sequence[int] | None = None) -> list[ParameterUse]:
        """Which stacked tasks used which parameter blocks in the latest forward pass: encoders
        and heads are task-owned (unless shared; encoders are used by all tasks under a scheme that
        ``mixes_tasks``), the core says for itself (see
        ``SharingScheme.parameter_users``); a part that declares nothing is used by all."""
        n = len(task_list(tasks, self.scheme.n_tasks))
        uses: list[ParameterUse] = []
        for part in (self.encoders, self.scheme, self.heads):
            declare = getattr(part, "parameter_users", None)
            if part is self.encoders and self.scheme.mixes_tasks:
                declare = None  # every task's output depends on every encoder
            uses += declare(tasks) if declare is not None else used_by_all(part.parameters(), n)
        return uses

    def task_parameters(self) -> list[nn.Parameter]:
        """Parameters ``[T, ...]`` whose slice t belongs to task t alone (per-task encoders,
        heads, logits): every submodule's ``task_stacked_parameters()``, without duplicates."""
        seen: dict[int, nn.Parameter] = {}
        for module in self.modules():
            get = getattr(module, "task_stacked_parameters", None)
            if module is not self and callable(get):
                for p in get():
                    if p.requires_grad:
                        seen.setdefault(id(p), p)
        return list(seen.values())

    def parameter_owners(self) -> list[ParameterUse]:
        """What belongs to some tasks only, whatever the forward pass: ``users [T, n]`` over all
        T tasks says which tasks own index i of a parameter along ``dim``. The optimiser moves
        an index only in updates that involve one of its owners (alternating mode), with its own
        state. Collected from every submodule: ``task_stacked_parameters()`` (index t along axis
        0 is task t's) and ``parameter_owners()`` (e.g. single-task copies, branches, no_sharing
        components); parameters whose every index belongs to all tasks are left out."""
        n = self.scheme.n_tasks
        found: dict[int, ParameterUse] = {}
        for module in self.modules():
            if module is self:
                continue
            get = getattr(module, "task_stacked_parameters", None)
            declared = [task_rows(p, range(n)) for p in get()] if callable(get) else []
            own = getattr(module, "parameter_owners", None)
            declared += own() if callable(own) else []
            for use in declared:
                if use.param.requires_grad and not bool(use.users.all()):
                    found.setdefault(id(use.param), use)
        return list(found.values())

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.architecture_parameters()}
        return [p for p in self.parameters() if p.requires_grad and id(p) not in arch]


def _rename_old_keys(state: dict[str, Any], prefix: str, *_: Any) -> None:
    """Map ``core.*`` keys of states saved before the rename onto ``scheme.*`` (in place)."""
    old = prefix + _OLD_PREFIX
    for key in [k for k in state if k.startswith(old)]:
        state[prefix + _PREFIX + key[len(old):]] = state.pop(key)
