"""A small multi-label table for tests: mixed target kinds, one target missing on half the rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def multi_label_csv(path: Path, n: int = 60, seed: int = 0, scale: float = 1.0) -> Path:
    """Features a, b, colour; targets: reg (times ``scale``, missing on every odd row), yes/no
    ``bin``, 3-class ``cls``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    lines = ["a,b,colour,reg,bin,cls"]
    for i in range(n):
        reg = "" if i % 2 else f"{(3 * x[i, 0] - x[i, 1]) * scale:.6f}"
        lines.append(f"{x[i, 0]:.5f},{x[i, 1]:.5f},{'red' if i % 3 else 'blue'},{reg},"
                     f"{'yes' if x[i, 1] > 0 else 'no'},{int(np.digitize(x[i, 0], [-0.4, 0.4]))}")
    path.write_text("\n".join(lines) + "\n")
    return path
