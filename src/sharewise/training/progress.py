"""The training progress line (tqdm): steps/s, ETA and the running mean loss.

Quiet unless stderr is a terminal (tqdm's ``disable=None``), so CI logs stay readable.
``ProgressBar`` is the callback the trainer calls once per step (``bar(step, total, loss)``);
:func:`track` wraps any other long loop (single-task trainings, affinity computation) the same way.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sized
from typing import Any, TypeVar

from tqdm import tqdm

T = TypeVar("T")
_FORMAT = "{desc} [{bar:24}] {n}/{total} {rate_noinv_fmt} ETA {remaining_s:.0f}s{loss}  "


class _Line(tqdm):  # type: ignore[misc]
    """tqdm with the running loss as a format field (``{loss}``), not a comma-led postfix."""

    loss_text = ""

    @property
    def format_dict(self) -> dict[str, Any]:
        return {**super().format_dict, "loss": self.loss_text}


class ProgressBar:
    """``bar(step, total, loss)``; ``initial`` is the step a resumed run starts from (steps/s
    counts only this process's steps); ``enabled`` None: only when stderr is a terminal."""

    def __init__(self, total: int, label: str = "", min_interval: float = 0.25, initial: int = 0,
                 enabled: bool | None = None) -> None:
        self.line = _Line(total=total, initial=initial, desc=label, ascii=".#", file=sys.stderr,
                          mininterval=min_interval, bar_format=_FORMAT, leave=True,
                          disable=None if enabled is None else not enabled)

    def __call__(self, step: int, total: int, loss: float | None = None) -> None:
        if self.line.disable:
            return
        self.line.total = total
        self.line.loss_text = f" loss {loss:.4f}" if loss is not None else ""
        self.line.update(step - self.line.n)
        if step == total:
            self.line.refresh()

    def close(self) -> None:
        self.line.close()


def track(items: Iterable[T], label: str = "", total: int | None = None,
          enabled: bool | None = None) -> Iterator[T]:
    """Yield ``items`` while showing a progress line (for long loops outside the trainer)."""
    if total is None:
        total = len(items) if isinstance(items, Sized) else 0
    bar = ProgressBar(total, label=label, enabled=enabled)
    try:
        for i, item in enumerate(items, 1):
            yield item
            bar(i, max(total, i))
    finally:
        bar.close()
