"""Class 1: nothing sharewise reads can run code.

A payload (a pickle whose unpickling calls ``os.system``, a YAML tag that would call it) is planted
in every file a command loads: the checkpoint ``run --resume`` and a resumed ``compare`` cell read,
the ``best.pt`` of ``affinity --reuse``, the config of ``run`` / ``validate`` / ``compare``, the
run directory's own ``config.yaml``, and pickles given where JSON is expected (``branch``'s affinity
file, ``report``'s summary, a scheme's ``tree``). The payload must not run (its marker file is never
created), the command exits 2 naming the file, and the run directory is unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import yaml

from sharewise.cli.main import main
from tests.robustness._helpers import assert_refused, cli, copy_run, tree_hash, write_config

MNIST_CFG = {
    "name": "tiny", "scheme": "single_task",
    "tasks": {"builder": "mnist_multitask",
              "options": {"canvas": 16, "mask_size": 4, "n_train": 64, "n_val": 40, "n_test": 32}},
    "model": {"encoder": {"kind": "channel_pad"}, "core": {"kind": "conv", "width": 4, "depth": 2}},
    "train": {"steps": 3, "batch_size": 8, "eval_every": 3, "threads": 1},
}


class _Payload:
    """Unpickling this calls ``os.system("touch MARKER")``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def plant_pickle(path: Path, marker: Path, wrap: bool = True) -> None:
    obj = {"format": 1, "model": _Payload(marker)} if wrap else _Payload(marker)
    torch.save(obj, path)


def yaml_payload(marker: Path) -> str:
    return f"name: t\ntrain: !!python/object/apply:os.system ['touch {marker}']\n"


def test_resume_checkpoint_payload_does_not_run(finished_run: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    run = copy_run(finished_run, tmp_path / "run", stopped=True)
    marker = tmp_path / "PWNED"
    plant_pickle(run / "checkpoint.pt", marker)
    before = tree_hash(run)
    code, err = cli(capsys, "run", "--resume", run)
    assert_refused(code, err, str(run / "checkpoint.pt"), "nothing in it is executed")
    assert "weights_only" not in err  # torch's hint to disable the protection is not passed on
    assert not marker.exists() and tree_hash(run) == before


def test_compare_cell_checkpoint_payload_does_not_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path / "t.yaml")
    out = tmp_path / "grid"
    args = ["compare", cfg, "--schemes", "parallel", "--seeds", "0", "--out", out, "--no-report"]
    assert cli(capsys, *args)[0] == 0
    cell = out / "parallel" / "seed0"
    (cell / "summary.json").unlink()  # the cell now looks stopped: the grid resumes it from checkpoint.pt
    marker = tmp_path / "PWNED"
    plant_pickle(cell / "checkpoint.pt", marker)
    before = tree_hash(cell)
    code, err = cli(capsys, *args)
    assert code == 2 and "checkpoint.pt" in err and "nothing in it is executed" in err, err
    assert not marker.exists() and tree_hash(cell) == before


@pytest.mark.slow
def test_affinity_reuse_best_state_payload_does_not_run(tmp_path: Path, shared_data: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path / "m.yaml", MNIST_CFG)
    data = ["--data-dir", str(shared_data)]
    run = tmp_path / "single"
    assert main(["run", str(cfg), "--out", str(run), "--no-plots", "--no-report", *data]) == 0
    marker = tmp_path / "PWNED"
    plant_pickle(run / "best.pt", marker)
    before = tree_hash(run)
    code, err = cli(capsys, "affinity", cfg, "--reuse", run, "--out", tmp_path / "aff", "--inputs", "10", *data)
    assert_refused(code, err, str(run / "best.pt"), "nothing in it is executed")
    assert not marker.exists() and tree_hash(run) == before
    # A best.pt holding plain data of the wrong form is refused too, naming the file.
    torch.save([1, 2, 3], run / "best.pt")
    code, err = cli(capsys, "affinity", cfg, "--reuse", run, "--out", tmp_path / "aff2", "--inputs", "10", *data)
    assert_refused(code, err, "best.pt")


@pytest.mark.parametrize("command", [["validate"], ["run", "--out", "r"], ["compare", "--schemes", "parallel"]])
def test_config_yaml_payload_does_not_run(command: list[str], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "PWNED"
    cfg = tmp_path / "evil.yaml"
    cfg.write_text(yaml_payload(marker))
    args = [command[0], str(cfg), *command[1:]]
    code, err = cli(capsys, *args)
    assert_refused(code, err, str(cfg), "not valid YAML")
    assert not marker.exists() and not (tmp_path / "r").exists()


def test_run_directory_config_payload_does_not_run(finished_run: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    run = copy_run(finished_run, tmp_path / "run", stopped=True)
    marker = tmp_path / "PWNED"
    (run / "config.yaml").write_text(yaml_payload(marker))
    before = tree_hash(run)
    code, err = cli(capsys, "run", "--resume", run)
    assert_refused(code, err, str(run / "config.yaml"))
    assert not marker.exists() and tree_hash(run) == before


def test_pickles_where_json_is_expected_do_not_run(finished_run: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "PWNED"
    aff = tmp_path / "affinity.json"
    plant_pickle(aff, marker, wrap=False)
    code, err = cli(capsys, "branch", aff, "--budget", "1000", "--out", tmp_path / "tree")
    assert_refused(code, err, str(aff))
    run = copy_run(finished_run, tmp_path / "run")
    plant_pickle(run / "summary.json", marker, wrap=False)
    before = tree_hash(run)
    for args in (["report", run], ["delta-m", run, "--baseline", run]):
        code, err = cli(capsys, *args)
        assert_refused(code, err, str(run / "summary.json"))
    tree = tmp_path / "tree.json"
    plant_pickle(tree, marker, wrap=False)
    cfg = write_config(tmp_path / "b.yaml", scheme="branched", scheme_options={"tree": str(tree)})
    code, err = cli(capsys, "run", cfg, "--out", tmp_path / "b")
    assert_refused(code, err, str(tree))
    assert not marker.exists() and tree_hash(run) == before


@pytest.mark.parametrize("component", ["os.system", "subprocess.run", "builtins.eval", "torch.load", "torch.hub.load",
                                       "numpy.save", "torch.Tensor"])
def test_component_paths_cannot_call_arbitrary_functions(component: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """``_component_`` names a module to build; a config (or a run directory's config.yaml) must not
    be able to call os.system, torch.load(weights_only=False), torch.hub.load, ... through it."""
    marker = tmp_path / "PWNED"
    payload = {"_component_": component, "command": f"touch {marker}", "args": ["touch", str(marker)],
               "source": f"open('{marker}', 'w')", "f": str(marker), "weights_only": False}
    cfg = write_config(tmp_path / "t.yaml", model={"encoder": payload, "core": {"width": 8, "depth": 2}})
    for command in (["validate", cfg], ["run", cfg, "--out", tmp_path / "r"]):
        code, err = cli(capsys, *command)
        assert_refused(code, err, component, "model.encoder")
    assert not marker.exists() and not (tmp_path / "r").exists()


def test_run_directory_config_cannot_name_a_function_to_run(finished_run: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    run = copy_run(finished_run, tmp_path / "run", stopped=True)
    marker = tmp_path / "PWNED"
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    resolved["model"]["encoder"] = {"_component_": "os.system", "command": f"touch {marker}"}
    (run / "config.yaml").write_text(yaml.safe_dump(resolved))
    before = tree_hash(run)
    code, err = cli(capsys, "run", "--resume", run)
    assert_refused(code, err, "os.system")
    assert not marker.exists() and tree_hash(run) == before


def test_export_and_adapt_best_state_payload_does_not_run(finished_run: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    run = copy_run(finished_run, tmp_path / "run")
    marker = tmp_path / "PWNED"
    plant_pickle(run / "best.pt", marker)
    before = tree_hash(run)
    new = write_config(tmp_path / "new.yaml", tasks={"builder": "demo", "options": {"names": ["digits"]}})
    for args in (["export", run, "--task", "iris"], ["adapt", run, new, "--out", tmp_path / "adapted"]):
        code, err = cli(capsys, *args)
        assert_refused(code, err, str(run / "best.pt"), "nothing in it is executed")
    assert not marker.exists() and tree_hash(run) == before and not (tmp_path / "adapted").exists()


def test_config_imports_cannot_name_standard_library_modules(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """``imports:`` registers the user's own schemes; a standard-library module (``this`` prints, others
    open browsers or run more) is refused before it is imported."""
    import sys

    sys.modules.pop("this", None)
    cfg = write_config(tmp_path / "t.yaml", imports=["this"])
    capsys.readouterr()
    code = main(["validate", str(cfg)])
    out, err = capsys.readouterr()
    assert_refused(code, err, "imports[0]", "'this'", "standard-library")
    assert "Zen of Python" not in out and "this" not in sys.modules
