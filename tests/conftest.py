"""Locate the real offline datasets shared by all data tests (project root's ``../shared/data``)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder; fail loudly (never skip) so a missing mount is not mistaken for a pass."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.fail(
            f"the real datasets were expected at {SHARED_DATA} (the project root's ../shared/data), "
            "but that folder (or its README.md) is missing; mount or copy the shared data there."
        )
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _single_thread_and_cwd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests run with one torch thread (fast on small models, reproducible) in a scratch cwd."""
    import torch

    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)
