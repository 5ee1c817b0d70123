"""`sharewise run --resume`: a run killed with SIGKILL at an arbitrary step and resumed ends with
the same results, bit for bit, as the same run left alone; SIGTERM checkpoints and exits 143."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from sharewise.cli.main import main
from sharewise.training.checkpoint import load_checkpoint
from sharewise.training.io import read_jsonl

SRC = Path(__file__).resolve().parents[2] / "src"


def _config(tmp_path: Path, **train: Any) -> Path:
    cfg = {
        "name": "tiny",
        "scheme": "soft_ordering",
        "tasks": {"builder": "demo", "options": {"names": ["iris", "wine", "friedman1"]}},
        "model": {"core": {"width": 16, "depth": 3, "dropout": 0.2}},
        "train": {"steps": 400, "batch_size": 16, "eval_every": 25, "checkpoint_every": 50, "threads": 1,
                  **train},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _start(config: Path, out: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen([sys.executable, "-m", "sharewise", "run", str(config), "--out", str(out),
                             "--no-plots", "--no-report"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(proc: subprocess.Popen[str], ready: Any, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"the run ended (status {proc.returncode}) before it could be stopped: "
                        f"{proc.communicate()[1]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the run did not reach the expected step in time")
        time.sleep(0.01)


def _last_step(path: Path) -> int:
    records = read_jsonl(path) if path.exists() else []
    return records[-1]["step"] if records else 0


RESULT_KEYS = ("tasks", "best_step", "selection_score", "mean_test_error", "mean_test_loss", "structure")


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    killed = tmp_path / "killed"
    proc = _start(config, killed)
    # Kill between checkpoints: after the first one (step 50) and an evaluation past it.
    _wait_for(proc, lambda: (killed / "checkpoint.pt").exists() and _last_step(killed / "metrics.jsonl") >= 75)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert not (killed / "summary.json").exists(), "the run finished before it was killed"
    stopped_at = load_checkpoint(killed / "checkpoint.pt")["step"]
    logged_beyond = _last_step(killed / "metrics.jsonl")
    assert stopped_at % 50 == 0 and logged_beyond > stopped_at

    assert main(["run", "--resume", str(killed), "--no-plots", "--no-report"]) == 0
    assert main(["run", str(config), "--out", str(tmp_path / "whole"), "--no-plots", "--no-report"]) == 0
    capsys.readouterr()

    resumed = json.loads((killed / "summary.json").read_text())
    whole = json.loads((tmp_path / "whole" / "summary.json").read_text())
    for key in RESULT_KEYS:
        assert resumed[key] == whole[key], key
    assert resumed["resumed_at_steps"] == [stopped_at] and whole["resumed_at_steps"] == []
    # metrics.jsonl: the lines written after the checkpoint by the killed process were replaced
    strip = lambda rs: [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rs]  # noqa: E731
    assert strip(read_jsonl(killed / "metrics.jsonl")) == strip(read_jsonl(tmp_path / "whole" / "metrics.jsonl"))
    run_info = json.loads((killed / "run.json").read_text())
    assert [r["step"] for r in run_info["resumes"]] == [stopped_at]


@pytest.mark.slow
def test_sigterm_writes_checkpoint_and_exits_143(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _start(_config(tmp_path, steps=1_000_000, checkpoint_every=0), out)
    _wait_for(proc, lambda: _last_step(out / "metrics.jsonl") >= 25)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    step = load_checkpoint(out / "checkpoint.pt")["step"]
    assert step >= 25
    assert f"run stopped at step {step} (SIGTERM), checkpoint written; resume with: sharewise run --resume {out}" in err


def test_resume_argument_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path, steps=6, eval_every=3, checkpoint_every=3)
    assert main(["run", "--resume", str(tmp_path / "nothing")]) == 2
    assert "is not a run directory (no config.yaml)" in capsys.readouterr().err
    assert main(["run", str(config), "--resume", str(tmp_path), "train.lr=0.1"]) == 2
    assert "takes no a config file, overrides" in capsys.readouterr().err

    out = tmp_path / "run"
    assert main(["run", str(config), "--out", str(out), "--no-plots", "--no-report"]) == 0
    assert main(["run", "--resume", str(out)]) == 2
    assert "already finished" in capsys.readouterr().err

    (out / "summary.json").unlink()  # now it looks like a stopped run
    assert main(["run", str(config), "--out", str(out), "--no-plots", "--no-report"]) == 2
    assert f"continue it with: sharewise run --resume {out}" in capsys.readouterr().err

    text = (out / "config.yaml").read_text()
    (out / "config.yaml").write_text(text.replace("lr: 0.001", "lr: 0.5"))
    assert main(["run", "--resume", str(out)]) == 2
    assert "differs from the configuration the checkpoint was written with" in capsys.readouterr().err
