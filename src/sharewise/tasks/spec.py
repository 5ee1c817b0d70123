"""What is predicted: a task's kind, its data, and the loss/metric that go with the kind.

:class:`TaskData` checks itself when built (every builder, shipped or user-written, goes through
it): matching row counts and input shapes across splits, finite float inputs, integer class
indices in range for classification and float ``[N, n_outputs]`` targets for regression, so a
bad task fails naming itself instead of training on garbage. :func:`check_task_list` checks
what a task-set builder returned as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from sharewise.errors import ConfigError, DataError

TaskKind = Literal["binary", "multiclass", "regression"]
TASK_KINDS: tuple[str, ...] = ("binary", "multiclass", "regression")
MISSING_LABEL = -1  # class index that marks "no label for this task on this row"


@dataclass
class TaskData:
    """One task's splits as tensors.

    ``x_*``: float32 ``[N, *input_shape]``. ``y_*``: int64 ``[N]`` class indices for classification,
    float32 ``[N, n_outputs]`` for regression. ``n_outputs`` is the number of classes for
    multiclass, 1 for binary (one sigmoid logit), the target dimension for regression.

    Missing labels (a multi-label table where a row has no label for this task): class index
    :data:`MISSING_LABEL` (``-1``) for classification, ``NaN`` for regression. Such rows are left
    out of this task's loss and metrics and nothing else (the row still trains the other tasks).
    Every split must keep at least one labelled row in ``train`` and ``test``.

    ``target_mean``/``target_std`` (float32 ``[n_outputs]``, regression only): set when ``y_*`` are
    standardised (:func:`sharewise.tasks.scaling.standardise_targets`); losses train on that
    scale and metrics are reported in original units, ``y * target_std + target_mean``.
    """

    name: str
    kind: TaskKind
    n_outputs: int
    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    x_test: Tensor
    y_test: Tensor
    notes: dict[str, Any] = field(default_factory=dict)
    target_mean: Tensor | None = None
    target_std: Tensor | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise DataError(f"a task's name must be a non-empty string, got {self.name!r}")
        if self.kind not in TASK_KINDS:
            raise DataError(f"task {self.name!r}: kind must be one of {TASK_KINDS}, got {self.kind!r}")
        least = 2 if self.kind == "multiclass" else 1
        if isinstance(self.n_outputs, bool) or not isinstance(self.n_outputs, int) or self.n_outputs < least:
            raise DataError(f"task {self.name!r}: n_outputs must be an integer >= {least} for a {self.kind} task, "
                            f"got {self.n_outputs!r}")
        for split in ("train", "val", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if not isinstance(x, Tensor) or not isinstance(y, Tensor):
                raise DataError(f"task {self.name!r}: x_{split} and y_{split} must be torch tensors, got "
                                f"{type(x).__name__} and {type(y).__name__}")
            if x.dim() < 2 and x.shape[0]:
                raise DataError(f"task {self.name!r}: x_{split} must be [N, *input_shape] (at least 2-D), got shape "
                                f"{list(x.shape)}; reshape a single feature to [N, 1]")
            if x.shape[0] != y.shape[0]:
                raise DataError(
                    f"task {self.name!r}: {split} split has {x.shape[0]} inputs but {y.shape[0]} targets"
                )
            if x.shape[0] == 0 and split != "val":
                raise DataError(f"task {self.name!r}: the {split} split is empty")
            if self.kind == "regression" and y.dim() == 1:
                setattr(self, f"y_{split}", y.float().unsqueeze(1))
        self._check_shapes_and_values()
        if self.kind != "regression":
            ys = torch.cat([self.y_train, self.y_val, self.y_test])
            n_classes = 2 if self.kind == "binary" else self.n_outputs
            if ys.numel() and (int(ys.min()) < MISSING_LABEL or int(ys.max()) >= n_classes):
                raise DataError(
                    f"task {self.name!r}: labels must lie in 0..{n_classes - 1} for a {self.kind} task "
                    f"({MISSING_LABEL} marks a missing label), but got labels from {int(ys.min())} to "
                    f"{int(ys.max())}"
                )
        for split in ("train", "test"):
            if self.x_train.shape[0] and not bool(self.labelled(split).any()):
                raise DataError(f"task {self.name!r}: every label in the {split} split is missing; a task "
                                "needs labelled rows to train on and to be tested on")

    def labelled(self, split: str) -> Tensor:
        """bool ``[N]``: the rows of ``split`` that carry this task's label."""
        y = getattr(self, f"y_{split}")
        if self.kind == "regression":
            return ~torch.isnan(y).all(dim=1)
        return y != MISSING_LABEL

    def _check_shapes_and_values(self) -> None:
        """Same input shape in every split, finite inputs, targets of the kind's type and width."""
        for split in ("val", "test"):
            x = getattr(self, f"x_{split}")
            if x.shape[0] and x.shape[1:] != self.x_train.shape[1:]:
                raise DataError(f"task {self.name!r}: the {split} inputs have shape {list(x.shape[1:])} per row but the "
                                f"train inputs {list(self.x_train.shape[1:])}; every split needs the same columns")
        for split in ("train", "val", "test"):
            x, y = self.split(split)
            if not x.is_floating_point():
                raise DataError(f"task {self.name!r}: x_{split} must be a float tensor, got {x.dtype}; convert it "
                                f"with .float()")
            bad = (~torch.isfinite(x)).nonzero()
            if bad.numel():
                at = bad[0].tolist()
                raise DataError(f"task {self.name!r}: x_{split} holds {int(bad.shape[0])} non-finite values (NaN or "
                                f"inf), the first at row {at[0]}, position {at[1:]}: {float(x[tuple(at)])}; impute or "
                                f"drop them before building the task")
            if self.kind == "regression":
                if not y.is_floating_point() or y.dim() != 2 or y.shape[1] != self.n_outputs:
                    raise DataError(f"task {self.name!r}: y_{split} of a regression task must be float [N, "
                                    f"{self.n_outputs}] (n_outputs), got {y.dtype} of shape {list(y.shape)}")
                if y.numel() and bool(torch.isinf(y).any()):
                    raise DataError(f"task {self.name!r}: y_{split} holds infinite targets; drop those rows (NaN "
                                    f"marks a missing label)")
            else:
                if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
                    raise DataError(f"task {self.name!r}: y_{split} of a {self.kind} task must hold integer class "
                                    f"indices, got {y.dtype}; convert labels with .long() (or make the task "
                                    f"kind 'regression' if the targets are real numbers)")
                if y.dim() != 1:
                    raise DataError(f"task {self.name!r}: y_{split} of a {self.kind} task must be 1-D [N] class "
                                    f"indices, got shape {list(y.shape)}")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def target_dim(self) -> int:
        """Width of the stacked target row (1 for classification)."""
        return self.n_outputs if self.kind == "regression" else 1

    def split(self, name: str) -> tuple[Tensor, Tensor]:
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    def _label_counts(self) -> dict[str, int]:
        """Labelled rows per split, only when some label is missing."""
        counts = {f"n_{s}_labelled": int(self.labelled(s).sum()) for s in ("train", "val", "test")}
        full = all(counts[f"n_{s}_labelled"] == getattr(self, f"x_{s}").shape[0] for s in ("train", "val", "test"))
        return {} if full else counts

    def summary(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "n_outputs": self.n_outputs,
            "input_shape": list(self.input_shape),
            "n_train": int(self.x_train.shape[0]),
            "n_val": int(self.x_val.shape[0]),
            "n_test": int(self.x_test.shape[0]),
            **self._label_counts(),
            **({"target_mean": self.target_mean.tolist(), "target_std": self.target_std.tolist()}
               if self.target_std is not None else {}),
            **({"notes": self.notes} if self.notes else {}),
        }


def check_task_list(tasks: Any, builder: str) -> list[TaskData]:
    """What a task-set builder returned: a non-empty list of TaskData (or, for data streamed from
    disk, of :class:`~sharewise.data.streaming.DatasetTask`, all of one kind) with unique names."""
    from sharewise.data.streaming import DatasetTask

    kinds = {TaskData if isinstance(t, TaskData) else DatasetTask if isinstance(t, DatasetTask) else None
             for t in tasks} if isinstance(tasks, (list, tuple)) else {None}
    if None in kinds or len(kinds) > 1:
        got = type(tasks).__name__ if not isinstance(tasks, (list, tuple)) else \
            f"a list holding {sorted({type(t).__name__ for t in tasks})}"
        raise DataError(f"task set {builder!r} must return a list of TaskData (or a list of DatasetTask for "
                        f"streamed data), got {got}")
    if not tasks:
        raise ConfigError(f"task set {builder!r} produced no tasks; check tasks.options")
    names = [t.name for t in tasks]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ConfigError(f"task set {builder!r} produced several tasks named {duplicated}; task names key every "
                        f"result, so they must be unique (rename the files or tasks)")
    return list(tasks)
