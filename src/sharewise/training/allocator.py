"""Keep freed memory in the process for the next step instead of handing it back to the OS.

A training step frees and re-allocates the same activations every step. glibc's malloc, with its
defaults, returns a large freed block to the kernel (``munmap``, or trimming the heap's top above
128 KiB), so the next step page-faults the same amount of memory in again, zero-filled by the
kernel. On this project's CPU (one thread, quiet; docs/results.md Sec. 8.0f) keeping it made an
Omniglot-50 soft-ordering step (52x52, 50 tasks, ~30 MB activations per layer) 1.13-1.14x
faster; steps with small activations (parallel on the same data, the dense MNIST-pairs and
LibMTL workloads) were unchanged within noise. The values are the same (the allocator decides
where tensors live, not what they hold).

:func:`keep_freed_memory` sets three glibc ``mallopt`` parameters, as the documented environment
variables ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_`` and ``MALLOC_MMAP_THRESHOLD_`` would:

- trim threshold 1 GiB: the heap's free top is returned to the OS only above 1 GiB;
- top pad 64 MiB: the heap grows in steps of at least 64 MiB (fewer ``brk`` calls);
- mmap threshold 32 MiB (glibc's largest): blocks up to 32 MiB come from the heap, so they are
  reused rather than mapped and unmapped each step.

The cost is memory: up to about 1 GiB more resident than the live tensors need, per process.
``sharewise`` commands call it at their start; a library user may call it once. It does nothing
where malloc is not glibc's (macOS, Windows, musl), where the user set any of the three
``MALLOC_*_`` variables (theirs win), or with ``SHAREWISE_ALLOCATOR=default``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

TRIM_THRESHOLD = 1 << 30
TOP_PAD = 64 << 20
MMAP_THRESHOLD = 32 << 20  # glibc refuses more than HEAP_MAX_SIZE / 2 = 32 MiB on 64-bit
# mallopt's parameter numbers (glibc malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_USER_VARIABLES = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_")

_state: str | None = None


def allocator_state() -> str:
    """What :func:`keep_freed_memory` did in this process, for ``run.json`` (``"default"`` if not called)."""
    return _state or "default"


def keep_freed_memory() -> str:
    """Set glibc malloc to keep freed memory for reuse (see the module docstring); once per process.

    Returns the state recorded in a run's metadata: ``"glibc: trim 1024 MiB, top pad 64 MiB, mmap
    32 MiB"``, or ``"default (<why not>)"``."""
    global _state
    if _state is not None:
        return _state
    _state = _apply()
    return _state


def _apply() -> str:
    if os.environ.get("SHAREWISE_ALLOCATOR", "").strip().lower() == "default":
        return "default (SHAREWISE_ALLOCATOR=default)"
    given = [name for name in _USER_VARIABLES if name in os.environ]
    if given:
        return f"default (the user's {', '.join(given)})"
    if not sys.platform.startswith("linux"):
        return f"default (not glibc: {sys.platform})"
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return "default (no glibc mallopt)"
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = ((_M_TRIM_THRESHOLD, TRIM_THRESHOLD), (_M_TOP_PAD, TOP_PAD), (_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    if not all(mallopt(param, value) == 1 for param, value in settings):  # 1 = accepted
        return "default (mallopt refused a setting)"
    return (f"glibc: trim {TRIM_THRESHOLD >> 20} MiB, top pad {TOP_PAD >> 20} MiB, "
            f"mmap {MMAP_THRESHOLD >> 20} MiB")
