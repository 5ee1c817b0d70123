"""One writer per run directory: an exclusive ``flock`` on ``DIR/.sharewise.lock``.

``fcntl.flock`` belongs to the open file, so the operating system releases it when the process
ends in any way (SIGKILL and crashes included): a stale lock file never blocks a later run. The
file holds the owner's PID only so that the error can name it.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from sharewise.errors import SharewiseError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks; runs are not protected there
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".sharewise.lock"


class RunLockedError(SharewiseError):
    """Another process is writing into the run directory."""


class RunLock:
    """Context manager holding the run directory's lock (creates the directory)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fh: int | None = None

    def acquire(self) -> RunLock:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                owner = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise RunLockedError(
                    f"run directory {str(self.run_dir)!r} is in use by another sharewise process "
                    f"(PID {owner}, lock file {str(self.path)!r}); wait for it to finish, stop it, "
                    f"or choose another --out"
                ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fh = fd
        return self

    def release(self) -> None:
        if self._fh is not None:
            # Keep the file (unlinking it would race with a process about to lock it); just unlock.
            if fcntl is not None:
                fcntl.flock(self._fh, fcntl.LOCK_UN)
            os.close(self._fh)
            self._fh = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
