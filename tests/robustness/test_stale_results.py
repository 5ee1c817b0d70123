"""Class 2: never a stale result.

A finished (or stopped) grid cell is reused only when its resolved config and the sharewise version
that wrote it equal what is asked; otherwise ``compare`` / ``demo`` refuse before any work, naming
the cell, the keys that differ (old -> new) and how to start fresh, and nothing in the grid changes.
The same command reuses the cells; ``--overwrite`` re-runs the differing ones.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from sharewise.cli.main import main
from tests.robustness._helpers import assert_refused, cli, tree_hash, write_config


@pytest.fixture(scope="module")
def finished_grid(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("grid")
    cfg = write_config(root / "t.yaml")
    assert main(["compare", str(cfg), "--schemes", "parallel", "--seeds", "0", "--out", str(root / "grid"),
                 "--no-report"]) == 0
    return cfg, root / "grid"


@pytest.fixture()
def grid(finished_grid: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path, list[str]]:
    """A private copy of the finished 1-cell grid and the command that made it."""
    cfg, src = finished_grid
    out = tmp_path / "grid"
    shutil.copytree(src, out)
    return cfg, out, ["compare", str(cfg), "--schemes", "parallel", "--seeds", "0", "--out", str(out), "--no-report"]


@pytest.mark.parametrize("change, named", [
    (["--steps", "30"], "train.steps: 20 -> 30"),
    (["model.core.width=16"], "model.core.width: 8 -> 16"),
    (["train.lr=0.01"], "train.lr"),
    (["tasks.options.names=[iris,wine]"], "tasks.options.names"),
])
def test_changed_config_is_refused_not_reused(grid: tuple, change: list[str], named: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    _, out, args = grid
    before = tree_hash(out)
    code, err = cli(capsys, *args, *change)
    assert_refused(code, err, str(out / "parallel" / "seed0"), named, "another --out", "--overwrite")
    assert tree_hash(out) == before


def test_same_command_reuses_and_overwrite_reruns(grid: tuple, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, args = grid
    before = tree_hash(out / "parallel" / "seed0")
    assert cli(capsys, *args)[0] == 0
    assert tree_hash(out / "parallel" / "seed0") == before  # reused untouched
    assert cli(capsys, *args, "--steps", "30", "--overwrite")[0] == 0
    summary = json.loads((out / "parallel" / "seed0" / "summary.json").read_text())
    assert summary["steps"] == 30


def test_other_sharewise_version_is_refused(grid: tuple, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, args = grid
    path = out / "parallel" / "seed0" / "summary.json"
    summary = json.loads(path.read_text())
    summary["meta"]["sharewise"] = "0.0.1"
    path.write_text(json.dumps(summary))
    before = tree_hash(out)
    code, err = cli(capsys, *args)
    assert_refused(code, err, "written by sharewise 0.0.1")
    assert tree_hash(out) == before


def test_stopped_cell_with_other_config_is_refused(grid: tuple, capsys: pytest.CaptureFixture[str]) -> None:
    """A stopped cell (checkpoint, no summary) of another config was silently overwritten before."""
    _, out, args = grid
    (out / "parallel" / "seed0" / "summary.json").unlink()
    before = tree_hash(out)
    code, err = cli(capsys, *args, "model.core.width=16")
    assert_refused(code, err, "(stopped)", "model.core.width: 8 -> 16")
    assert tree_hash(out) == before


def test_edited_cell_config_is_refused(grid: tuple, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, args = grid
    path = out / "parallel" / "seed0" / "config.yaml"
    resolved = yaml.safe_load(path.read_text())
    resolved["train"]["batch_size"] = 8
    path.write_text(yaml.safe_dump(resolved))
    before = tree_hash(out)
    code, err = cli(capsys, *args)
    assert_refused(code, err, "train.batch_size: 8 -> 16")
    assert tree_hash(out) == before


@pytest.mark.slow
def test_demo_rerun_with_other_steps_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert cli(capsys, "demo", "--out", out, "--seeds", "0", "--steps", "4", "--jobs", "1")[0] == 0
    before = tree_hash(out)
    code, err = cli(capsys, "demo", "--out", out, "--seeds", "0", "--steps", "6", "--jobs", "1")
    assert_refused(code, err, "train.steps: 4 -> 6")
    assert tree_hash(out) == before


@pytest.mark.slow
def test_affinity_reuse_of_a_run_with_other_settings_is_refused(tmp_path: Path, shared_data: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path / "m.yaml", {
        "name": "tiny", "scheme": "single_task",
        "tasks": {"builder": "mnist_multitask",
                  "options": {"canvas": 16, "mask_size": 4, "n_train": 64, "n_val": 40, "n_test": 32}},
        "model": {"encoder": {"kind": "channel_pad"}, "core": {"kind": "conv", "width": 4, "depth": 2}},
        "train": {"steps": 3, "batch_size": 8, "eval_every": 3, "threads": 1}})
    data = ["--data-dir", str(shared_data)]
    run = tmp_path / "single"
    assert cli(capsys, "run", cfg, "--out", run, *data)[0] == 0
    before = tree_hash(run)
    for change, named in ((["--steps", "5"], "train.steps: 3 -> 5"), (["--seed", "1"], "seed: 0 -> 1"),
                          (["train.lr=0.01"], "train.lr")):
        code, err = cli(capsys, "affinity", cfg, "--reuse", run, "--out", tmp_path / "aff", "--inputs", "10",
                        *data, *change)
        assert_refused(code, err, str(run), named, "stale")
    assert tree_hash(run) == before and not (tmp_path / "aff").exists()
    assert cli(capsys, "affinity", cfg, "--reuse", run, "--out", tmp_path / "aff", "--inputs", "10", *data)[0] == 0
