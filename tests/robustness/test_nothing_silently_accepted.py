"""Class 7: nothing is silently accepted that a user would not want.

An empty config file, empty / repeated / malformed ``--seeds`` and ``--schemes``, zero or negative
``--steps`` / ``--jobs`` / ``--budget`` (``demo --steps 0`` used to mean 1500), options that
``--resume`` would ignore (``--seed 0`` and ``--steps 0`` included, which are falsy), and invalid
``TaskData`` (mismatched widths across splits, float or 2-D labels for classification, non-finite
inputs, wrong regression width, no tasks, a builder returning something else) all fail with exit 2
or a ``DataError`` naming the thing, and nothing is written.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sharewise.data.tasksets import _registry
from sharewise.errors import DataError
from sharewise.tasks.spec import TaskData
from tests.robustness._helpers import assert_refused, cli, copy_run, tree_hash, write_config


def test_empty_config_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for text in ("", "# only a comment\n", "\n\n"):
        cfg = tmp_path / "empty.yaml"
        cfg.write_text(text)
        for command in (["validate", cfg], ["run", cfg], ["compare", cfg, "--schemes", "parallel"]):
            code, err = cli(capsys, *command)
            assert_refused(code, err, str(cfg), "empty")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.yaml"]


@pytest.mark.parametrize("seeds, named", [(",", "--seeds"), ("", "--seeds"), ("0,,1", "--seeds"),
                                          ("1,1", "more than once"), ("-1", "non-negative"), ("a", "integers")])
def test_bad_seeds_are_refused(seeds: str, named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path / "t.yaml")
    for command in (["compare", cfg, "--schemes", "parallel"], ["demo", "--out", tmp_path / "d"]):
        code, err = cli(capsys, *command, "--seeds", seeds)
        assert_refused(code, err, named, repr(seeds))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.yaml"]


@pytest.mark.parametrize("schemes, named", [(",", "--schemes"), ("parallel,parallel", "more than once"),
                                            ("parallel,,permuted", "--schemes"), ("nope", "unknown sharing scheme")])
def test_bad_schemes_are_refused(schemes: str, named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path / "t.yaml")
    code, err = cli(capsys, "compare", cfg, "--schemes", schemes, "--seeds", "0", "--out", tmp_path / "g")
    assert_refused(code, err, named)
    assert not (tmp_path / "g").exists()


@pytest.mark.parametrize("command", [
    ["demo", "--steps", "0"], ["demo", "--steps", "-5"], ["demo", "--jobs", "0"],
    ["run", "{cfg}", "--steps", "0"], ["compare", "{cfg}", "--schemes", "parallel", "--steps", "0"],
    ["compare", "{cfg}", "--schemes", "parallel", "--jobs", "-1"],
    ["affinity", "{cfg}", "--out", "aff", "--inputs", "0"],
    ["branch", "{cfg}", "--budget", "0", "--out", "tree"], ["branch", "{cfg}", "--budget", "9", "--beam", "0", "--out", "t"],
])
def test_zero_and_negative_counts_are_refused(command: list[str], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path / "t.yaml")
    out = ["--out", tmp_path / "d"] if command[0] == "demo" else []
    code, err = cli(capsys, *[a.format(cfg=cfg) for a in command], *out)
    option = command[[a.lstrip("-").isdigit() and int(a) <= 0 for a in command].index(True) - 1]
    assert_refused(code, err, option)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.yaml"]


@pytest.mark.parametrize("extra", [["--seed", "0"], ["--steps", "0"], ["--steps", "50"], ["train.lr=0.5"],
                                   ["--scheme", "parallel"], ["--overwrite"], ["{cfg}"], ["--out", "elsewhere"]])
def test_resume_refuses_options_it_would_ignore(extra: list[str], finished_run: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    run = copy_run(finished_run, tmp_path / "run", stopped=True)
    cfg = write_config(tmp_path / "t.yaml")
    before = tree_hash(run)
    args = [a.format(cfg=cfg) for a in extra]
    code, err = cli(capsys, "run", "--resume", run, *args)
    assert_refused(code, err, "--resume", "takes no")
    assert tree_hash(run) == before


# -- TaskData ------------------------------------------------------------------------------------

def _task(**change: object) -> TaskData:
    kw: dict = dict(name="t", kind="multiclass", n_outputs=3,
                    x_train=torch.rand(6, 4), y_train=torch.tensor([0, 1, 2, 0, 1, 2]),
                    x_val=torch.rand(3, 4), y_val=torch.tensor([0, 1, 2]),
                    x_test=torch.rand(3, 4), y_test=torch.tensor([2, 1, 0]))
    kw.update(change)
    return TaskData(**kw)


@pytest.mark.parametrize("change, named", [
    ({"x_val": torch.rand(3, 5)}, "val inputs have shape [5]"),
    ({"x_test": torch.rand(3, 2, 2)}, "test inputs have shape [2, 2]"),
    ({"y_train": torch.tensor([0.0, 1, 2, 0, 1, 2])}, "integer class indices"),
    ({"y_val": torch.tensor([0.5, 1.0, 2.0])}, "integer class indices"),
    ({"y_test": torch.tensor([[0], [1], [2]])}, "1-D [N] class indices"),
    ({"x_train": torch.tensor([[float("nan")] * 4] + [[0.0] * 4] * 5)}, "non-finite"),
    ({"x_test": torch.full((3, 4), float("inf"))}, "non-finite"),
    ({"x_train": torch.zeros(6, 4, dtype=torch.long)}, "float tensor"),
    ({"y_train": torch.tensor([0, 1, 2, 0, 1, 3])}, "labels must lie in 0..2"),
    ({"n_outputs": 1}, "n_outputs must be an integer >= 2"),
    ({"name": ""}, "non-empty string"),
    ({"kind": "regression", "n_outputs": 2, "y_train": torch.rand(6, 3), "y_val": torch.rand(3, 3),
      "y_test": torch.rand(3, 3)}, "float [N, 2]"),
    ({"kind": "regression", "n_outputs": 1, "y_train": torch.tensor([1.0, 2, float("inf"), 0, 0, 0]),
      "y_val": torch.rand(3), "y_test": torch.rand(3)}, "infinite targets"),
    ({"y_train": torch.full((6,), -1)}, "every label in the train split is missing"),
])
def test_invalid_taskdata_is_refused(change: dict, named: str) -> None:
    with pytest.raises(DataError) as info:
        _task(**change)
    assert named in str(info.value)


def test_valid_taskdata_is_accepted() -> None:
    task = _task()
    assert task.input_shape == (4,)
    reg = _task(kind="regression", n_outputs=1, y_train=torch.rand(6), y_val=torch.rand(3), y_test=torch.rand(3))
    assert reg.y_train.shape == (6, 1)  # 1-D regression targets become [N, 1]
    # Missing labels (-1 for classes, NaN for regression) are allowed where some rows stay labelled.
    assert _task(y_train=torch.tensor([0, -1, 2, 0, 1, 2])).labelled("train").sum() == 5
    part = _task(kind="regression", n_outputs=1, y_train=torch.tensor([1.0, float("nan"), 0, 0, 0, 0]),
                 y_val=torch.rand(3), y_test=torch.rand(3))
    assert part.labelled("train").sum() == 5


@pytest.mark.parametrize("returned, named", [([], "produced no tasks"), ("iris", "must return a list of TaskData"),
                                             ([object()], "must return a list of TaskData")])
def test_task_set_returning_no_or_wrong_tasks_is_refused(returned: object, named: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    def builder(*, data_dir: str | None = None, seed: int = 0, names: list | None = None) -> object:
        return returned

    _registry.available_tasksets()  # register the shipped task sets first
    monkeypatch.setitem(_registry.TASKSETS._builders, "demo", builder)
    cfg = write_config(tmp_path / "t.yaml")
    code, err = cli(capsys, "run", cfg, "--out", tmp_path / "r")
    assert_refused(code, err, "'demo'", named)
    assert not (tmp_path / "r").exists()
