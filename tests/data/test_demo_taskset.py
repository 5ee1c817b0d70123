"""The demo task set reads scikit-learn's bundled data without importing scikit-learn."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sharewise.data.tasksets.demo import load_bundled, make_friedman1

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer", "digits"])
def test_bundled_data_equal_scikit_learn_loaders(name: str) -> None:
    from sklearn import datasets

    x_ref, y_ref = getattr(datasets, f"load_{name}")(return_X_y=True)
    x, y = load_bundled(name)
    assert x.dtype == np.float64 and np.array_equal(x, x_ref)
    assert np.array_equal(y, y_ref)


def test_friedman1_equals_scikit_learn() -> None:
    from sklearn.datasets import make_friedman1 as reference

    for seed in (0, 3):
        x_ref, y_ref = reference(n_samples=600, n_features=10, noise=0.5, random_state=seed)
        x, y = make_friedman1(600, 10, 0.5, seed)
        assert np.array_equal(x, x_ref) and np.array_equal(y, y_ref)


def test_building_the_demo_tasks_imports_no_scikit_learn_scipy_or_matplotlib() -> None:
    code = ("import sys; from sharewise.data.tasksets import build_tasks; "
            "tasks = build_tasks('demo', data_dir=None, seed=0, options={}); "
            "import sharewise.cli.main, sharewise.runner; "
            "print(len(tasks), sorted(m for m in ('sklearn', 'scipy', 'matplotlib', 'PIL') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.strip() == "5 []"
