"""Turn SIGINT / SIGTERM into a request to stop after the current step, with a checkpoint.

The trainer polls :class:`StopRequest` once per step; when set, it writes ``checkpoint.pt`` and
raises :class:`RunStopped`, which the command line turns into a message saying how to resume
and the conventional exit status ``128 + signal`` (130 for SIGINT, 143 for SIGTERM): the run did
not finish, so scripts and schedulers must not mistake it for success. A second SIGINT while
stopping raises ``KeyboardInterrupt`` at once (the escape hatch when a step hangs).

Requests nest: a grid of runs holds one for the whole grid, and each run's own request, entered
inside it, starts from the grid's (a signal that arrived while a run was loading its data stops
it at its first step) and passes its signal up (the grid starts no further run). A grid that was
stopped raises :class:`GridStopped`, whose message names the command that continues it.
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


class GridStopped(RunStopped):
    """A grid of runs stopped on a signal: running cells checkpointed, no further cell started."""

    def __init__(self, signum: int, stopped: list[str], not_started: int, command: str) -> None:
        self.step, self.signum, self.run_dir = 0, signum, None
        name = signal.Signals(signum).name
        cells = f"{len(stopped)} running cell(s) checkpointed ({', '.join(stopped)})" if stopped else \
            "no cell was running"
        Exception.__init__(self, f"stopped by {name}: {cells}, {not_started} cell(s) not started; finished cells "
                                 f"are kept. Continue with the same command: {command}")


class StopRequest:
    """Installs the handlers while active (main thread only; elsewhere it stays inert)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}
        self._outer: StopRequest | None = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum
        if self._outer is not None and self._outer.signum is None:
            self._outer.signum = signum

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
            outer = getattr(self._previous.get(signal.SIGTERM), "__self__", None)
            if isinstance(outer, StopRequest):
                self._outer, self.signum = outer, outer.signum
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        self._outer = None
