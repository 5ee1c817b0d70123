"""Fixtures for the hostile- and careless-input tests (helpers: ``_helpers.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sharewise.cli.main import main
from tests.robustness._helpers import write_config


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny soft-ordering run (read-only: copy it with :func:`copy_run` to change it)."""
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("finished")
    cfg = write_config(root / "t.yaml")
    assert main(["run", str(cfg), "--out", str(root / "run"), "--no-plots", "--no-report"]) == 0
    return root / "run"
