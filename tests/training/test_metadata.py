"""Every run records config, seed, versions, git revision, threads and wall time."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import torch

import sharewise
from sharewise.runner import run


def test_run_json_and_summary_record_provenance(tmp_path: Path, tiny: Any) -> None:
    summary = run(tiny(steps=3), tmp_path / "run")
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    for record in (info, summary):
        meta = record["meta"]
        assert meta["python"] == platform.python_version()
        assert meta["torch"] == torch.__version__ and meta["sharewise"] == sharewise.__version__
        assert meta["threads"] == 1 and "git_revision" in meta
        assert "cpu" in meta  # speed depends on the CPU model (docs/results.md 8.0b)
        if Path("/proc/cpuinfo").exists():
            assert meta["cpu"] and meta["cpu"] in Path("/proc/cpuinfo").read_text()
        assert record["config"]["train"]["threads"] == 1 and record["config"]["seed"] == 0
    assert info["seed"] == 0 and info["resumes"] == [] and info["started_at"]
    assert summary["seed"] == 0 and summary["wall_time_s"] > 0
