"""A dependency-free progress line: steps/s, ETA and the running mean loss.

Quiet unless stderr is a terminal, so CI logs stay readable. ``ProgressBar`` is the callback the
trainer calls once per step; :func:`track` wraps any other long loop (single-task trainings,
affinity computation) the same way.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator, Sized
from typing import TypeVar

T = TypeVar("T")


class ProgressBar:
    """``bar(step, total, loss)``; ``initial`` is the step a resumed run starts from (for steps/s)."""

    def __init__(self, total: int, label: str = "", min_interval: float = 0.25, initial: int = 0,
                 enabled: bool | None = None) -> None:
        self.total, self.label, self.min_interval, self.initial = total, label, min_interval, initial
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.start = self.last = time.perf_counter()

    def __call__(self, step: int, total: int, loss: float | None = None) -> None:
        now = time.perf_counter()
        if not self.enabled or (now - self.last < self.min_interval and step != total):
            return
        self.last = now
        rate = (step - self.initial) / max(now - self.start, 1e-9)
        eta = (total - step) / max(rate, 1e-9)
        width = 24
        filled = int(width * step / max(total, 1))
        shown = f" loss {loss:.4f}" if loss is not None else ""
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {step}/{total} "
                         f"{rate:.1f} it/s ETA {eta:.0f}s{shown}  ")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


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
