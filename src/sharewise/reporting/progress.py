"""A dependency-free progress line: steps/s, ETA and the running mean loss.

Quiet unless stderr is a terminal, so CI logs stay readable.
"""

from __future__ import annotations

import sys
import time


class ProgressBar:
    def __init__(self, total: int, label: str = "", min_interval: float = 0.25) -> None:
        self.total, self.label, self.min_interval = total, label, min_interval
        self.enabled = sys.stderr.isatty()
        self.start = self.last = time.perf_counter()

    def __call__(self, step: int, total: int, loss: float) -> None:
        now = time.perf_counter()
        if not self.enabled or (now - self.last < self.min_interval and step != total):
            return
        self.last = now
        rate = step / max(now - self.start, 1e-9)
        eta = (total - step) / max(rate, 1e-9)
        width = 24
        filled = int(width * step / total)
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {step}/{total} "
                         f"{rate:.0f} steps/s ETA {eta:.0f}s loss {loss:.4f}  ")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
