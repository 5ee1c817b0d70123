"""One writer per run directory; the lock dies with its process (SIGKILL included)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sharewise.runner import run
from sharewise.training.lock import LOCK_NAME, RunLock, RunLockedError

_HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0); os.write(fd, str(os.getpid()).encode())
print("locked", flush=True)
time.sleep(60)
"""


def test_second_writer_is_refused_with_the_pid(tmp_path: Path) -> None:
    with RunLock(tmp_path / "run"):
        with pytest.raises(RunLockedError, match=rf"'{tmp_path / 'run'}' is in use .*PID {os.getpid()}"):
            RunLock(tmp_path / "run").acquire()
    with RunLock(tmp_path / "run"):  # released on exit, so a new writer gets it and records its PID
        assert (tmp_path / "run" / LOCK_NAME).read_text().strip() == str(os.getpid())


def test_lock_of_a_killed_process_is_released(tmp_path: Path) -> None:
    tmp_path.joinpath("run").mkdir()
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path / "run" / LOCK_NAME)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match=f"PID {holder.pid}"):
            RunLock(tmp_path / "run").acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    time.sleep(0.05)
    with RunLock(tmp_path / "run"):
        assert (tmp_path / "run" / LOCK_NAME).read_text().strip() == str(os.getpid())


def test_run_into_a_locked_directory_fails_before_writing(tmp_path: Path, tiny: Any) -> None:
    with RunLock(tmp_path / "run"):
        with pytest.raises(RunLockedError, match="in use by another sharewise process"):
            run(tiny(steps=2), tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [LOCK_NAME]
