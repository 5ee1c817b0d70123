"""Locate the real offline datasets shared by all data tests (project root's ``../shared/data``)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder; fail loudly (never skip) so a missing mount is not mistaken for a pass."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.fail(
            f"the real datasets were expected at {SHARED_DATA} (the project root's ../shared/data), "
            "but that folder (or its README.md) is missing; mount or copy the shared data there."
        )
    return SHARED_DATA
