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
