"""benchmarks/gpu/omniglot_full.py: the time plan, and the whole script at toy size on the CPU (so
the one GPU run works the first time)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
import tarfile
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("omniglot_full", ROOT / "benchmarks" / "gpu" / "omniglot_full.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_plan_keeps_the_paper_length_in_priority_order_and_gives_the_rest_to_omniglot20() -> None:
    m = _script()
    o50 = (10.0, {"soft_ordering": 0.02, "parallel": 0.01, "single_task": 0.01, "permuted": 0.01,
                  "soft_ordering_uniform": 0.02})
    o20 = (5.0, {"gumbel_matrix": 0.2, "shared_bottom": 0.1})
    # 5000 steps cost 8 + 1.25 * 5000 * rate: 133 s (soft), 70.5 s (parallel, single, permuted), 133 s (uniform)
    jobs = m.plan(o50, o20, 400.0, [0], 5000, 20000, [], [], ["scheme_options={network: omniglot20}"], fixed_s=8.0)
    o50_jobs = [j for j in jobs if j.experiment == "omniglot50"]
    assert [j.scheme for j in o50_jobs] == ["soft_ordering", "parallel"]  # 220 s share: 133 + 70.5; single: no
    assert all(j.steps == 5000 and "train.eval_every=250" in j.overrides for j in o50_jobs)
    o20_jobs = [j for j in jobs if j.experiment == "omniglot20"]
    # left: 400 - 203.5 = 196.5 s for 2 runs: (98.25 - 8) / (1.25 * 0.2) = 361 steps -> 360 (a multiple of 10)
    assert [(j.scheme, j.steps) for j in o20_jobs] == [("gumbel_matrix", 360), ("shared_bottom", 360)]
    assert "scheme_options={network: omniglot20}" in o20_jobs[1].overrides
    assert "scheme_options={network: omniglot20}" not in o20_jobs[0].overrides
    assert m.plan(o50, o20, 10.0, [0], 5000, 20000, [], [], [], fixed_s=8.0) == []  # nothing fits
    o50[1]["parallel"] = math.inf  # a scheme whose calibration failed is never planned
    o20[1]["shared_bottom"] = math.inf  # nor Omniglot-20 at all: both schemes or neither
    jobs = m.plan(o50, o20, 400.0, [0], 5000, 20000, [], [], [], fixed_s=8.0)
    assert [j.scheme for j in jobs] == ["soft_ordering", "single_task"]


@pytest.mark.slow
def test_tiny_mode_runs_every_scheme_and_packs_the_results(shared_data: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    out = tmp_path / "out"
    rc = _script().main(["--tiny", "--data-dir", str(shared_data), "--out", str(out), "--work", str(tmp_path / "w")])
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["log.txt", "plan.json", "results.md", "runs.tar.gz"]
    plan = json.loads((out / "plan.json").read_text())
    done = [(j["experiment"], j["scheme"], j["steps"]) for j in plan["jobs"] if j["status"] == "done"]
    assert done == [("omniglot50", s, 4) for s in ("soft_ordering", "parallel", "single_task", "permuted",
                                                    "soft_ordering_uniform")] + \
        [("omniglot20", "gumbel_matrix", 4), ("omniglot20", "shared_bottom", 4)]
    with tarfile.open(out / "runs.tar.gz") as tar:
        names = tar.getnames()
    assert sum(n.endswith("summary.json") for n in names) == 7
    assert not any(n.endswith((".pt", "run.lock")) for n in names)
    summary = json.loads((tmp_path / "w" / "omniglot50" / "soft_ordering" / "seed0" / "summary.json").read_text())
    assert summary["config"]["tasks"]["options"]["n_alphabets"] == 2 and summary["config"]["model"]["core"]["width"] == 53
    results = (out / "results.md").read_text()
    assert "### omniglot50" in results and "### omniglot20" in results and "soft order: entropy" in results
