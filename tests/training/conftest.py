"""A tiny, fast run configuration shared by the training tests."""

from __future__ import annotations

from typing import Any

import pytest


def tiny_config(**train: Any) -> dict[str, Any]:
    """Three small scikit-learn tasks, soft ordering with dropout (draws from the global RNG)."""
    return {
        "name": "tiny",
        "scheme": "soft_ordering",
        "tasks": {"builder": "demo", "options": {"names": ["iris", "wine", "friedman1"]}},
        "model": {"core": {"width": 16, "depth": 3, "dropout": 0.2}},
        "train": {"steps": 40, "batch_size": 16, "eval_every": 10, "checkpoint_every": 15, "threads": 1,
                  **train},
    }


@pytest.fixture
def tiny() -> Any:
    return tiny_config
