"""What a run records about where it ran, so results can be traced and reproduced."""

from __future__ import annotations

import functools
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from sharewise.components.gemm import gemm_backend
from sharewise.training.allocator import allocator_state


@functools.lru_cache(maxsize=8)
def git_revision(start: Path | None = None) -> str | None:
    """The repository's HEAD (with ``-dirty`` if there are uncommitted changes), or None.

    Asked once per process (two ``git`` calls; a run records its metadata at the start and in
    the summary): the code a process runs is the code it imported at its start."""
    cwd = start or Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


@functools.lru_cache(maxsize=1)
def cpu_model() -> str | None:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``), or None.

    Speed depends on it: the same code ran soft
    ordering 5.0x faster than the Eq. 7 loop on one CPU and 3.3x on another (docs/results.md 8.0b)."""
    cpuinfo = Path("/proc/cpuinfo")
    text = cpuinfo.read_text() if cpuinfo.is_file() else ""  # Linux only; elsewhere the fallback below
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or None


def run_metadata() -> dict[str, Any]:
    from sharewise import __version__

    return {
        "sharewise": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "threads": torch.get_num_threads(),
        "allocator": allocator_state(),  # speed only: the values do not depend on it
        "gemm": gemm_backend(),  # dense layers' CPU matrix products (values equal up to float rounding)
        "git_revision": git_revision(),
        "command": " ".join(sys.argv),
    }
