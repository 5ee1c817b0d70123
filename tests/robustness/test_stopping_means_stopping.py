"""Class 5: stopping means stopping.

SIGINT / SIGTERM to ``compare`` (sequential or ``--jobs 2``) checkpoints the running cells, starts
no further cell, exits 130 / 143 and prints the command that continues; killing the parent of a
``--jobs 2`` grid with any signal (SIGKILL included, which it cannot catch) leaves no worker
behind. Real processes and real signals, so these run as subprocesses.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.robustness._helpers import TINY_CFG, write_config

pytestmark = pytest.mark.slow
SRC = Path(__file__).resolve().parents[2] / "src"


def start(tmp_path: Path, schemes: str, jobs: int) -> tuple[subprocess.Popen, Path, list[str]]:
    cfg = write_config(tmp_path / "t.yaml", {**TINY_CFG, "train": {**TINY_CFG["train"], "steps": 10**6}})
    out = tmp_path / "grid"
    args = ["compare", str(cfg), "--schemes", schemes, "--seeds", "0", "--out", str(out), "--jobs", str(jobs),
            "--no-report"]
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "sharewise", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, out, args


def wait_for(predicate: object, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended before {what}: {proc.communicate()}")
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def training(out: Path, scheme: str) -> bool:
    return (out / scheme / "seed0" / "metrics.jsonl").exists()


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in state  # a zombie has ended; only its exit status is left


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_ctrl_c_stops_a_sequential_grid(tmp_path: Path) -> None:
    sig = signal.SIGINT  # SIGTERM: the --jobs 2 test below
    proc, out, args = start(tmp_path, "parallel,permuted", jobs=1)
    wait_for(lambda: training(out, "parallel"), 120, "the first cell to train", proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err
    assert "Continue with the same command: sharewise compare" in err and "--schemes parallel,permuted" in err, err
    assert (out / "parallel" / "seed0" / "checkpoint.pt").exists()
    assert not (out / "permuted" / "seed0" / "checkpoint.pt").exists()  # no further cell started


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads worker PIDs from /proc (Linux)")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killing_the_parent_leaves_no_worker(sig: signal.Signals, tmp_path: Path) -> None:
    proc, out, _ = start(tmp_path, "parallel,permuted,no_sharing", jobs=2)
    wait_for(lambda: training(out, "parallel") and training(out, "permuted"), 180, "two cells to train", proc)
    workers = children(proc.pid)
    assert len(workers) >= 2  # two workers (and possibly multiprocessing's resource tracker)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == (-sig if sig == signal.SIGKILL else 128 + sig), err
    wait_for(lambda: not any(alive(w) for w in workers), 60, f"workers {workers} to exit")
    for scheme in ("parallel", "permuted"):  # running cells wrote their checkpoint on the way out
        assert (out / scheme / "seed0" / "checkpoint.pt").exists(), scheme
    if sig != signal.SIGKILL:
        assert "Continue with the same command" in err, err
