"""Balancing under data parallelism: 2 ranks x b equals 1 process x 2b (as tests/training/test_distributed.py).

The per-task path (an aggregator) averages the per-task gradient matrix over ranks before
aggregating, so both ranks aggregate the global-batch gradients; uncertainty weighting runs
through DDP with log-variance gradients from the rank-averaged losses.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from sharewise.runner import run
from sharewise.training.checkpoint import load_checkpoint

pytest.importorskip("torchjd", reason="sharewise[jd] is installed by `make test`; this skip is for bare installs")
SRC = Path(__file__).resolve().parents[2] / "src"


def _config(scheme: str, batch: int, **train: Any) -> dict[str, Any]:
    return {"name": "ddp", "scheme": scheme,
            "tasks": {"builder": "demo", "options": {"names": ["iris", "wine", "friedman1"]}},
            "model": {"core": {"width": 16, "depth": 3, "dropout": 0.0}},
            "train": {"steps": 60, "batch_size": batch, "eval_every": 30, "checkpoint_every": 30, "threads": 1,
                      **train}}


@pytest.mark.slow
@pytest.mark.parametrize("scheme,train", [
    ("gumbel_matrix", {"aggregator": "upgrad", "structure_aware": True, "weighting": "dwa",
                       "weighting_options": {"window": 10}}),
    ("soft_ordering", {"weighting": "uncertainty"}),
])
def test_two_ranks_equal_double_batch(tmp_path: Path, scheme: str, train: dict[str, Any]) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "config.yaml").write_text(yaml.safe_dump(_config(scheme, 8, **train)))
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           "-m", "sharewise", "run", "config.yaml", "--out", "out"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ddp = load_checkpoint(cwd / "out" / "checkpoint.pt")
    run(_config(scheme, 16, **train), tmp_path / "single")
    single = load_checkpoint(tmp_path / "single" / "checkpoint.pt")
    for name, value in single["model"].items():
        torch.testing.assert_close(ddp["model"][name], value, atol=1e-5, rtol=0, msg=name)
    for name, value in single["balancing"]["weighting"].items():
        torch.testing.assert_close(ddp["balancing"]["weighting"][name], value, atol=1e-5, rtol=1e-5, msg=name)
    losses = [(a["train_loss"], b["train_loss"]) for a, b in zip(ddp["history"], single["history"])]
    assert losses and all(abs(a - b) < 1e-4 for a, b in losses)
    # the weights moved, so the comparison covers the weighting's state too
    assert any(abs(v - 1.0) > 1e-3 for v in ddp["history"][-1]["balancing"].values())
