"""Helpers for the hostile- and careless-input tests (issue 11).

Every test drives the real command line in-process (``main([...])``; subprocesses only where a
signal must be sent), then checks three things: the exit status, that the one-paragraph message
names the thing that is wrong, and that nothing already written changed (:func:`tree_hash` of the
run directory before and after).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import yaml

from sharewise.cli.main import main

TINY_CFG = {
    "name": "t",
    "tasks": {"builder": "demo", "options": {"names": ["iris", "wine", "friedman1"]}},
    "model": {"core": {"width": 8, "depth": 2}},
    "train": {"steps": 20, "eval_every": 10, "batch_size": 16},
}


def write_config(path: Path, cfg: dict | None = None, **extra: object) -> Path:
    data = {**(cfg or TINY_CFG), **extra}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def tree_hash(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under ``root`` (a folder listing and content snapshot)."""
    if not root.exists():
        return {}
    if root.is_file():
        return {root.name: hashlib.sha256(root.read_bytes()).hexdigest()}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run ``sharewise ARGS`` in-process: (exit status, stderr)."""
    capsys.readouterr()
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    return code, err


def assert_refused(code: int, err: str, *names: str) -> None:
    """Exit 2, one paragraph without a traceback, naming every one of ``names``."""
    assert code == 2, err
    assert "Traceback" not in err and "unexpected" not in err, err
    for name in names:
        assert name in err, f"{name!r} not named in: {err}"


def copy_run(src: Path, dst: Path, stopped: bool = False) -> Path:
    """A private copy of a run directory; ``stopped`` removes summary.json (a run that can resume)."""
    shutil.copytree(src, dst)
    if stopped:
        (dst / "summary.json").unlink()
        (dst / "best.pt").unlink()
    return dst
