"""keep_freed_memory: glibc keeps freed memory for the next step; the user's own settings win."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
from sharewise.training.allocator import allocator_state, keep_freed_memory
print(allocator_state())
print(keep_freed_memory())
print(keep_freed_memory() is keep_freed_memory())  # once per process: the same state
"""


def _probe(**env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "SHAREWISE_ALLOCATOR"}
    clean["PYTHONPATH"] = str(ROOT / "src")
    out = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True,
                         check=True, timeout=120)
    return out.stdout.splitlines()


def _glibc() -> bool:
    import ctypes
    import ctypes.util

    try:
        return sys.platform.startswith("linux") and hasattr(ctypes.CDLL(ctypes.util.find_library("c")), "mallopt")
    except OSError:
        return False


def test_glibc_gets_the_three_settings_once_and_other_c_libraries_are_left_alone() -> None:
    before, state, same = _probe()
    assert before == "default"  # nothing happens on import
    if _glibc():
        assert state == "glibc: trim 1024 MiB, top pad 64 MiB, mmap 32 MiB"
    else:  # macOS, Windows, musl: no mallopt to call, and the state says why
        assert state.startswith("default (") and ("not glibc" in state or "no glibc mallopt" in state)
    assert same == "True"


def test_the_users_choice_wins() -> None:
    assert _probe(SHAREWISE_ALLOCATOR="default")[1] == "default (SHAREWISE_ALLOCATOR=default)"
    assert _probe(MALLOC_TRIM_THRESHOLD_="131072")[1] == "default (the user's MALLOC_TRIM_THRESHOLD_)"


def test_a_run_records_the_allocator(tmp_path: Path) -> None:
    import json

    out = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "sharewise", "run", str(ROOT / "configs/demo/demo.yaml"), "--steps", "2",
                    "--out", str(out), "--data-dir", str(ROOT.parent / "shared/data")],
                   env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "SHAREWISE_ALLOCATOR": "default"},
                   check=True, capture_output=True, timeout=300)
    meta = json.loads((out / "run.json").read_text())["meta"]
    assert meta["allocator"] == "default (SHAREWISE_ALLOCATOR=default)"
