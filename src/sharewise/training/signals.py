"""Turn SIGINT / SIGTERM into a request to stop after the current step, with a checkpoint.

The trainer polls :class:`StopRequest` once per step; when set, it writes ``checkpoint.pt`` and
raises :class:`RunStopped`, which the command line turns into a message saying how to resume
and the conventional exit status ``128 + signal`` (130 for SIGINT, 143 for SIGTERM): the run did
not finish, so scripts and schedulers must not mistake it for success. A second SIGINT while
stopping raises ``KeyboardInterrupt`` at once (the escape hatch when a step hangs).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any


class RunStopped(Exception):
    """Training stopped on a signal after writing a checkpoint (not an error)."""

    def __init__(self, step: int, signum: int, run_dir: Path | None) -> None:
        self.step, self.signum, self.run_dir = step, signum, run_dir
        name = signal.Signals(signum).name
        where = f"; resume with: sharewise run --resume {run_dir}" if run_dir is not None else ""
        super().__init__(f"run stopped at step {step} ({name}), checkpoint written{where}")

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class StopRequest:
    """Installs the handlers while active (main thread only; elsewhere it stays inert)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
