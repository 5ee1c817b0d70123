"""Class 4: the user's files are never touched.

``--out`` of every writing command (run, compare, demo, affinity, branch) pointing at a non-empty
folder that sharewise did not create is refused before anything is written, ``--overwrite``
included; ``report`` never replaces a report.md / report.html it did not write; a file given as
``--out`` is refused; a config ``name`` (which becomes ``runs/<name>``) cannot lead outside the
output root. Empty or new folders, and sharewise's own folders, are accepted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.robustness._helpers import assert_refused, cli, copy_run, tree_hash, write_config


def user_folder(path: Path) -> Path:
    path.mkdir()
    (path / "config.yaml").write_text("my: own config\n")
    (path / "report.md").write_text("# my thesis notes\n")
    (path / "summary.json").write_text("{}\n")
    return path


@pytest.mark.parametrize("command", [
    ["run", "{cfg}", "--out", "{out}"],
    ["run", "{cfg}", "--out", "{out}", "--overwrite"],
    ["compare", "{cfg}", "--schemes", "parallel", "--seeds", "0", "--out", "{out}"],
    ["compare", "{cfg}", "--schemes", "parallel", "--seeds", "0", "--out", "{out}", "--overwrite"],
    ["demo", "--out", "{out}", "--seeds", "0", "--steps", "2"],
    ["affinity", "{cfg}", "--out", "{out}", "--inputs", "5"],
])
def test_non_sharewise_out_folder_is_refused(command: list[str], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path / "t.yaml")
    out = user_folder(tmp_path / "mine")
    before = tree_hash(out)
    code, err = cli(capsys, *[a.format(cfg=cfg, out=out) for a in command])
    assert_refused(code, err, str(out), "did not create")
    assert tree_hash(out) == before


def test_branch_out_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    aff = tmp_path / "affinity.json"
    aff.write_text(json.dumps({"tasks": ["a", "b"], "affinity": [[[1, 0.5], [0.5, 1]]], "block_params": [10],
                               "head_params": {"a": 3, "b": 3}}))
    out = user_folder(tmp_path / "mine")
    before = tree_hash(out)
    code, err = cli(capsys, "branch", aff, "--budget", "100", "--out", out)
    assert_refused(code, err, str(out))
    assert tree_hash(out) == before
    assert cli(capsys, "branch", aff, "--budget", "100", "--out", tmp_path / "new")[0] == 0  # a new folder is fine


def test_report_never_replaces_a_users_report(finished_run: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = user_folder(tmp_path / "mine")
    before = tree_hash(out)
    code, err = cli(capsys, "report", finished_run, "--out", out)
    assert_refused(code, err, str(out), "report.md")
    assert tree_hash(out) == before
    # Two runs and no --out write into the current folder: a user's report.md there is kept too.
    (Path.cwd() / "report.md").write_text("mine\n")
    code, err = cli(capsys, "report", finished_run, finished_run)
    assert_refused(code, err, "report.md")
    assert (Path.cwd() / "report.md").read_text() == "mine\n"


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/sharewise-escape", "a/../../b", "..", ".hidden", "x\ny", ""])
def test_config_name_cannot_escape_the_output_root(name: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path / "t.yaml", name=name)
    for command in (["run", cfg], ["compare", cfg, "--schemes", "parallel", "--seeds", "0"], ["validate", cfg]):
        code, err = cli(capsys, *command)
        assert_refused(code, err, "name:", "plain folder name")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.yaml"]  # nothing written anywhere
    assert not Path("/tmp/sharewise-escape").exists()


def test_file_as_out_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path / "t.yaml")
    target = tmp_path / "notes.txt"
    target.write_text("keep me\n")
    for command in (["run", cfg], ["compare", cfg, "--schemes", "parallel", "--seeds", "0"]):
        code, err = cli(capsys, *command, "--out", target)
        assert_refused(code, err, str(target), "is a file")
    assert target.read_text() == "keep me\n"


def test_empty_and_sharewise_folders_are_accepted(finished_run: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path / "t.yaml")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli(capsys, "run", cfg, "--out", empty, "--no-plots", "--no-report", "--steps", "2")[0] == 0
    run = copy_run(finished_run, tmp_path / "run")
    assert cli(capsys, "run", cfg, "--out", run, "--overwrite", "--no-plots", "--no-report", "--steps", "2")[0] == 0


def test_export_and_adapt_out_folders_are_refused(finished_run: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = user_folder(tmp_path / "mine")
    before = tree_hash(out)
    new = write_config(tmp_path / "new.yaml", tasks={"builder": "demo", "options": {"names": ["digits"]}})
    for args in (["export", finished_run, "--task", "iris", "--out", out], ["adapt", finished_run, new, "--out", out]):
        code, err = cli(capsys, *args)
        assert_refused(code, err, str(out), "did not create")
    assert tree_hash(out) == before
