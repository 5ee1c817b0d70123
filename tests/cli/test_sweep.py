"""Parallel sweeps: worker processes, failures isolated, finished cells reused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sharewise.cli.main import main
from sharewise.sweep import run_grid

TINY = {"name": "t", "tasks": {"builder": "demo", "options": {"names": ["iris", "wine", "friedman1"]}},
        "model": {"core": {"width": 8, "depth": 2}},
        "train": {"steps": 20, "eval_every": 10, "batch_size": 16}}


def test_jobs_2_matches_sequential(tmp_path: Path) -> None:
    data = TINY
    seq = run_grid(data, ["parallel"], [0, 1], tmp_path / "seq", None, jobs=1)
    par = run_grid(data, ["parallel"], [0, 1], tmp_path / "par", None, jobs=2)
    assert all(r.ok for r in seq + par)
    for seed in (0, 1):
        a = json.loads((tmp_path / "seq" / "parallel" / f"seed{seed}" / "summary.json").read_text())
        b = json.loads((tmp_path / "par" / "parallel" / f"seed{seed}" / "summary.json").read_text())
        # Thread counts differ between the two (1 vs cores // 2), so compare to float tolerance.
        for task in a["tasks"]:
            assert b["tasks"][task]["test_loss"] == pytest.approx(a["tasks"][task]["test_loss"], rel=1e-4, abs=1e-6)


def test_failed_cell_is_reported_and_the_rest_is_kept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "t.yaml"
    import yaml

    five = {**TINY, "tasks": {"builder": "demo"}}  # 5 tasks > 4 components: no_sharing cannot be built
    cfg.write_text(yaml.safe_dump(five))
    out = tmp_path / "cmp"
    code = main(["compare", str(cfg), "--schemes", "parallel,no_sharing", "--seeds", "0", "--jobs", "2",
                 "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 2
    assert re.search(r"no_sharing +seed 0: FAILED", captured.out)
    assert "1 of 2 cells failed" in captured.err and "T=5 tasks and C=4 components" in captured.err
    comp = json.loads((out / "comparison.json").read_text())
    assert list(comp["schemes"]) == ["parallel"]
    # Re-running skips the finished cell.
    mtime = (out / "parallel" / "seed0" / "summary.json").stat().st_mtime_ns
    main(["compare", str(cfg), "--schemes", "parallel", "--seeds", "0", "--out", str(out)])
    assert (out / "parallel" / "seed0" / "summary.json").stat().st_mtime_ns == mtime


@pytest.mark.slow
def test_killed_sweep_resumes_its_cell_exactly(tmp_path: Path) -> None:
    """SIGKILL a compare mid-cell; re-running it resumes the cell from its checkpoint, bit-identically."""
    import signal
    import subprocess
    import sys
    import time

    import yaml

    data = {**TINY, "train": {**TINY["train"], "steps": 400, "eval_every": 100, "checkpoint_every": 50, "threads": 1}}
    cfg = tmp_path / "t.yaml"
    cfg.write_text(yaml.safe_dump(data))
    args = [sys.executable, "-m", "sharewise", "compare", str(cfg), "--schemes", "parallel", "--seeds", "0",
            "--no-report"]
    subprocess.run([*args, "--out", str(tmp_path / "full")], check=True, capture_output=True, timeout=300)
    cell = tmp_path / "cut" / "parallel" / "seed0"
    proc = subprocess.Popen([*args, "--out", str(tmp_path / "cut")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (cell / "checkpoint.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if (cell / "summary.json").exists():
        pytest.fail("the cell finished before it could be killed; raise train.steps in this test")
    subprocess.run([*args, "--out", str(tmp_path / "cut")], check=True, capture_output=True, timeout=300)
    a = json.loads((tmp_path / "full" / "parallel" / "seed0" / "summary.json").read_text())
    b = json.loads((cell / "summary.json").read_text())
    assert b.get("resumed_at_steps"), "the cell was restarted instead of resumed"
    assert a["tasks"] == b["tasks"] and a["best_step"] == b["best_step"]
