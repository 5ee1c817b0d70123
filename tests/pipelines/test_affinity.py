"""affinity -> branch -> run branched -> delta-m, end to end on a tiny mnist_multitask, plus bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from sharewise.analysis import tree_params
from sharewise.cli.main import main
from sharewise.reporting.delta_m_runs import delta_m_of_runs

TASKS = ["digit", "parity", "ge5", "position", "rotation", "scale", "mask"]
CFG = {
    "name": "tiny", "scheme": "single_task",
    "tasks": {"builder": "mnist_multitask",
              "options": {"canvas": 16, "mask_size": 4, "n_train": 64, "n_val": 40, "n_test": 32}},
    "model": {"encoder": {"kind": "channel_pad"}, "core": {"kind": "conv", "width": 4, "depth": 2}},
    "train": {"steps": 3, "batch_size": 8, "eval_every": 3, "threads": 1},
}
BLOCK = 4 * 4 * 9 + 4  # conv 3x3, 4 -> 4 channels
HEAD = (4 * 4 * 4 + 1) * 16  # flattened 4x4x4 features -> 16 (the widest task: the 4x4 mask)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> dict:
    root = tmp_path_factory.mktemp("aff")
    cfg = root / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(CFG))
    data = ["--data-dir", str(shared_data)]
    assert main(["affinity", str(cfg), "--out", str(root / "aff"), "--inputs", "30", *data]) == 0
    return {"root": root, "cfg": cfg, "data": data, "aff": root / "aff" / "affinity.json"}


def test_affinity_json_heatmaps_and_parameter_counts(work: dict) -> None:
    aff = json.loads(work["aff"].read_text())
    assert aff["tasks"] == TASKS and aff["locations"] == ["block1", "block2"]
    a = np.asarray(aff["affinity"])  # [D, N, N]
    assert a.shape == (2, 7, 7)
    np.testing.assert_allclose(np.diagonal(a, axis1=1, axis2=2), 1.0)
    np.testing.assert_allclose(a, a.transpose(0, 2, 1))
    assert aff["block_params"] == [BLOCK, BLOCK] and aff["head_params"] == {t: HEAD for t in TASKS}
    assert (work["root"] / "aff" / "affinity_block2.png").is_file()
    again = work["root"] / "again"
    assert main(["affinity", str(work["cfg"]), "--out", str(again), "--inputs", "30", "--no-plots",
                 "--reuse", str(work["root"] / "aff" / "single_task"), *work["data"]]) == 0
    np.testing.assert_allclose(json.loads((again / "affinity.json").read_text())["affinity"], a)


def test_branch_run_and_delta_m(work: dict, capsys: pytest.CaptureFixture) -> None:
    out = work["root"] / "tree"
    budget = 2 * BLOCK + 7 * HEAD + 3 * BLOCK
    assert main(["branch", str(work["aff"]), "--budget", str(budget), "--out", str(out), "--beam", "4"]) == 0
    tree = json.loads((out / "tree.json").read_text())
    assert tree["params"] <= budget and tree["tasks"] == TASKS and (out / "tree.png").is_file()
    assert tree["params"] == tree_params(tree["partitions"], [BLOCK, BLOCK], [HEAD] * 7)
    run_dir = work["root"] / "branched"
    assert main(["run", str(work["cfg"]), "--scheme", "branched", f"scheme_options.tree={out / 'tree.json'}",
                 "--out", str(run_dir), "--no-plots", *work["data"]]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["n_parameters"] == tree["params"]
    assert summary["structure"]["tree"]["partitions"] == tree["partitions"]
    base = work["root"] / "aff" / "single_task"
    assert delta_m_of_runs([base], [base])["delta_m"] == 0.0
    capsys.readouterr()
    assert main(["delta-m", str(run_dir), "--baseline", str(base)]) == 0
    assert "| branched |" in capsys.readouterr().out


def test_bad_input_exits_2_with_the_numbers(work: dict, capsys: pytest.CaptureFixture) -> None:
    smallest = 2 * BLOCK + 7 * HEAD
    capsys.readouterr()
    assert main(["branch", str(work["aff"]), "--budget", str(smallest - 1), "--out", "t"]) == 2
    assert f"raise --budget to at least {smallest}" in capsys.readouterr().err
    assert main(["affinity", str(work["cfg"]), "--out", "k", "--inputs", "41", *work["data"]]) == 2
    assert "K=41 held-out inputs were asked for, but the val split has only 40" in capsys.readouterr().err
    sub = ["tasks.options.tasks=[digit,mask]"]
    assert main(["branch", str(work["aff"]), "--budget", "99999", "--out", "t", "--config", str(work["cfg"]),
                 *sub, *work["data"]]) == 2
    assert "do not match the config's tasks ['digit', 'mask']" in capsys.readouterr().err
    assert main(["affinity", str(work["cfg"]), "--out", "r", "--inputs", "30", "--reuse", str(work["root"] / "aff" / "single_task"),
                 *sub, *work["data"]]) == 2
    assert "but the config has tasks ['digit', 'mask']" in capsys.readouterr().err
