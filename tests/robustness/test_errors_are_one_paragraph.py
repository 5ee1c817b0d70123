"""Class 6: every error is one paragraph and exit 2, and nothing already written is lost.

A full disk while checkpointing (the last good checkpoint stays intact, no temporary file left);
corrupt ``run.json`` / ``metrics.jsonl`` (a damaged line in the middle is refused, never silently
dropped on resume; only a half-written *last* line of a killed run is dropped) / checkpoints
(truncated, garbage, a valid pickle lacking keys); wrong file types given to every command (a
binary as config, a folder as config, a file as run directory, YAML where JSON is expected);
shapes that cannot work (a conv core fed flat inputs by an identity encoder); and YAML 1.1's
``1e-3``-is-a-string trap (accepted as a float).
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
import torch
import yaml

from sharewise.training import io as sw_io
from sharewise.training.io import read_jsonl
from tests.robustness._helpers import TINY_CFG, assert_refused, cli, copy_run, tree_hash, write_config


def test_full_disk_keeps_the_last_good_checkpoint(finished_run: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    run = copy_run(finished_run, tmp_path / "run", stopped=True)
    good = tree_hash(run / "checkpoint.pt")
    real = sw_io.atomic_write

    def full(path: Path, write: object) -> None:
        def fail(fh: object) -> None:
            fh.write(b"partial")  # type: ignore[attr-defined]
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, fail)

    monkeypatch.setattr(sw_io, "atomic_write", full)
    code, err = cli(capsys, "run", "--resume", run, "--no-plots")
    assert_refused(code, err, "No space left on device", "last good checkpoint is intact")
    assert tree_hash(run / "checkpoint.pt") == good
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]  # no half-written temporary files


@pytest.mark.parametrize("content, named", [
    (b"{not json", "not valid JSON"),
    (b"\x80\x81binary", "not UTF-8"),
    (b"[1, 2]", "holding a JSON dict"),
    (b'{"resumes": 5}', "'resumes' must be a list"),
])
def test_corrupt_run_json_is_refused(content: bytes, named: str, finished_run: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    run = copy_run(finished_run, tmp_path / "run", stopped=True)
    (run / "run.json").write_bytes(content)
    before = tree_hash(run)
    code, err = cli(capsys, "run", "--resume", run)
    assert_refused(code, err, str(run / "run.json"), named)
    assert tree_hash(run) == before


def test_corrupt_metrics_line_is_never_silently_dropped(finished_run: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    run = copy_run(finished_run, tmp_path / "run", stopped=True)
    lines = (run / "metrics.jsonl").read_text().splitlines(keepends=True)
    (run / "metrics.jsonl").write_text(lines[0][:-5] + "@@\n" + "".join(lines[1:]))  # damaged line 1 of 2
    before = tree_hash(run)
    code, err = cli(capsys, "run", "--resume", run)
    assert_refused(code, err, f"{run / 'metrics.jsonl'}, line 1", "not valid JSON")
    assert tree_hash(run) == before
    (run / "metrics.jsonl").write_text("".join(lines) + '"a string"\n')  # not a record
    code, err = cli(capsys, "run", "--resume", run)
    assert_refused(code, err, "line 3", "expected a JSON object")


def test_half_written_last_line_is_the_only_thing_dropped(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 10}\n{"step": 20}\n{"step": 3')  # killed mid-append: no newline
    assert read_jsonl(path) == [{"step": 10}, {"step": 20}]
    path.write_text('{"step": 10}\n{"step": 2\n{"step": 30}\n')
    with pytest.raises(Exception, match="line 2"):
        read_jsonl(path)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "missing_keys", "wrong_format", "folder"])
def test_corrupt_checkpoint_is_refused(damage: str, finished_run: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    run = copy_run(finished_run, tmp_path / "run", stopped=True)
    ckpt = run / "checkpoint.pt"
    if damage == "truncate":
        ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    elif damage == "garbage":
        ckpt.write_bytes(b"\x00\x01 this is not a checkpoint" * 50)
    elif damage == "empty":
        ckpt.write_bytes(b"")
    elif damage == "missing_keys":
        state = torch.load(ckpt, weights_only=True)
        del state["optimizer"]
        torch.save(state, ckpt)
    elif damage == "wrong_format":
        torch.save({"format": 99}, ckpt)
    else:
        ckpt.unlink()
        ckpt.mkdir()
    before = tree_hash(run)
    code, err = cli(capsys, "run", "--resume", run)
    assert_refused(code, err, "checkpoint")
    assert str(ckpt) in err or repr(str(ckpt)) in err
    assert tree_hash(run) == before


def test_wrong_file_types_to_every_command(finished_run: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "picture.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    folder = tmp_path / "folder"
    folder.mkdir()
    notes = tmp_path / "notes.txt"
    notes.write_text("just some text\n")
    cfg = write_config(tmp_path / "t.yaml")
    cases = [
        (["validate", png], [str(png), "not UTF-8"]),
        (["run", png], [str(png)]),
        (["compare", png, "--schemes", "parallel"], [str(png)]),
        (["affinity", png, "--out", tmp_path / "a"], [str(png)]),
        (["run", folder], [str(folder), "folder"]),
        (["validate", notes], [str(notes), "mapping"]),
        (["run", "--resume", notes], [str(notes), "not a run directory"]),
        (["run", "--resume", folder], [str(folder), "not a run directory"]),
        (["report", notes], [str(notes)]),
        (["report", folder], [str(folder), "summary.json"]),
        (["delta-m", folder, "--baseline", finished_run], [str(folder)]),
        (["branch", cfg, "--budget", "10", "--out", tmp_path / "b"], [str(cfg), "not valid JSON"]),
        (["branch", png, "--budget", "10", "--out", tmp_path / "b"], [str(png)]),
        (["affinity", cfg, "--reuse", notes, "--out", tmp_path / "a"], [str(notes)]),
    ]
    for args, names in cases:
        code, err = cli(capsys, *args)
        assert_refused(code, err, *names)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.parametrize("payload, named", [
    ({"tasks": ["a"], "affinity": [[[1]]], "block_params": [1], "head_params": {"a": 1}}, "at least 2 task names"),
    ({"tasks": ["a", "b"], "affinity": [[1, 0], [0, 1]], "block_params": [1], "head_params": {"a": 1, "b": 1}},
     "shape [depth, 2, 2]"),
    ({"tasks": ["a", "b"], "affinity": [[[1, "x"], [0, 1]]], "block_params": [1], "head_params": {"a": 1, "b": 1}},
     "not numbers"),
    ({"tasks": ["a", "b"], "affinity": [[[1, 0], [0, 1]]], "block_params": [1, 2], "head_params": {"a": 1, "b": 1}},
     "block_params"),
    ({"tasks": ["a", "b"], "affinity": [[[1, 0], [0, 1]]], "block_params": [1], "head_params": {"a": 1}},
     "head_params"),
])
def test_malformed_affinity_file_is_refused(payload: dict, named: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    aff = tmp_path / "affinity.json"
    aff.write_text(json.dumps(payload))
    code, err = cli(capsys, "branch", aff, "--budget", "100", "--out", tmp_path / "tree")
    assert_refused(code, err, str(aff), named)
    assert not (tmp_path / "tree").exists()


@pytest.mark.parametrize("summary, named", [({"scheme": "x"}, "seed"), ({"scheme": "x", "seed": 0, "tasks": {}}, "tasks"),
                                            ({"scheme": "x", "seed": 0, "tasks": {"a": {"loss": 1}}}, "test_error")])
def test_damaged_summary_is_refused_by_readers(summary: dict, named: str, finished_run: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    run = copy_run(finished_run, tmp_path / "run")
    (run / "summary.json").write_text(json.dumps(summary))
    before = tree_hash(run)
    for args in (["report", run, "--out", tmp_path / "rep"], ["delta-m", run, "--baseline", run]):
        code, err = cli(capsys, *args)
        assert_refused(code, err, str(run / "summary.json"), named)
    assert tree_hash(run) == before


MNIST_TASKS = {"builder": "mnist_multitask",
               "options": {"canvas": 16, "mask_size": 4, "n_train": 32, "n_val": 16, "n_test": 16}}


@pytest.mark.parametrize("scheme", ["parallel", "single_task", "cross_stitch", "nddr", "soft_ordering"])
@pytest.mark.parametrize("core", ["conv", "dense"])
def test_impossible_shapes_fail_before_any_work(scheme: str, core: str, tmp_path: Path, shared_data: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """1-channel 16x16 images through an identity encoder into a 4-channel conv core / a dense core."""
    model = {"encoder": {"kind": "identity"}, "core": {"kind": core, "width": 4, "depth": 2}}
    cfg = write_config(tmp_path / "t.yaml", tasks=MNIST_TASKS, model=model, scheme=scheme)
    code, err = cli(capsys, "run", cfg, "--out", tmp_path / "r", "--data-dir", shared_data)
    assert_refused(code, err, "[1, 16, 16]")
    assert not (tmp_path / "r").exists()


def test_yaml_1_1_float_trap_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "t.yaml"
    base = {k: v for k, v in TINY_CFG.items() if k != "train"}
    cfg.write_text(yaml.safe_dump(base) + "train: {steps: 2, eval_every: 2, lr: 1e-3, weight_decay: 5E-4}\n")
    assert "1e-3" in cfg.read_text()  # written as YAML 1.1 would not read it
    code, err = cli(capsys, "validate", cfg)
    assert code == 0, err
    out = tmp_path / "r"
    assert cli(capsys, "run", cfg, "--out", out, "--no-plots", "--no-report", "train.lr=2e-3")[0] == 0
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["train"]["lr"] == pytest.approx(2e-3) and isinstance(resolved["train"]["lr"], float)
    assert resolved["train"]["weight_decay"] == pytest.approx(5e-4)


@pytest.mark.parametrize("scheme, option, named", [
    ("gumbel_matrix", "scheme_options.p_init=1.5", "scheme_options.p_init"),
    ("gumbel_matrix", "scheme_options.temperature_initial=-1", "scheme_options.temperature_initial"),
    ("gumbel_matrix", "scheme_options.budget=0", "scheme_options.budget"),
    ("gumbel_matrix", "scheme_options.execution=sideways", "scheme_options.execution"),
    ("cross_stitch", "scheme_options.alpha_self=2", "scheme_options.alpha_self"),
    ("soft_ordering", "train.lr=-0.1", "train.lr"),
    ("soft_ordering", "train.batch_size=0", "train.batch_size"),
    ("soft_ordering", "model.core.dropout=1.5", "model.core.dropout"),
])
def test_bad_option_values_are_refused_before_any_work(scheme: str, option: str, named: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path / "t.yaml", scheme=scheme)
    value = option.split("=", 1)[1]
    for command in (["validate", cfg, option], ["run", cfg, "--out", tmp_path / "r", option],
                    ["compare", cfg, "--schemes", scheme, "--seeds", "0", "--out", tmp_path / "g", option]):
        code, err = cli(capsys, *command)
        assert_refused(code, err, named, value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.yaml"]


def test_damaged_run_directories_given_to_export_and_adapt(finished_run: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    new = write_config(tmp_path / "new.yaml", tasks={"builder": "demo", "options": {"names": ["digits"]}})
    cases = [("run.json", b"{oops", "not valid JSON"), ("best.pt", b"garbage" * 20, "cannot read the best model state"),
             ("summary.json", b"[]", "holding a JSON dict")]
    for name, content, named in cases:
        run = copy_run(finished_run, tmp_path / f"run_{name}")
        (run / name).write_bytes(content)
        before = tree_hash(run)
        commands = [["adapt", run, new, "--out", tmp_path / "a"]]
        if name != "summary.json":  # export reads no summary
            commands.append(["export", run, "--task", "iris"])
        for args in commands:
            code, err = cli(capsys, *args)
            assert_refused(code, err, str(run / name), named)
        assert tree_hash(run) == before
    torch.save({"model": {"nonsense": torch.zeros(2)}}, (run := copy_run(finished_run, tmp_path / "r2")) / "best.pt")
    code, err = cli(capsys, "export", run, "--task", "iris")
    assert_refused(code, err, str(run / "best.pt"), "does not fit")


def test_command_line_settings_given_twice_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path / "t.yaml")
    for args, named in ((["run", cfg, "--steps", "5", "train.steps=10"], "train.steps (also --steps)"),
                        (["run", cfg, "--seed", "1", "seed=2"], "seed (also --seed)"),
                        (["run", cfg, "train.lr=0.1", "train.lr=0.2"], "train.lr"),
                        (["compare", cfg, "--schemes", "parallel", "--steps", "3", "train.steps=4"], "train.steps")):
        code, err = cli(capsys, *args)
        assert_refused(code, err, named, "more than once")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.yaml"]


@pytest.mark.parametrize("option, named", [("train.lr=.inf", "train.lr: expected a finite number, got inf"),
                                           ("train.weight_decay=.nan", "train.weight_decay: expected a finite number"),
                                           ("scheme_options.temperature_initial=-.inf", "scheme_options.temperature_initial")])
def test_non_finite_numbers_are_refused_before_training(option: str, named: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """``.inf`` passes a ``>= 0`` range check; it used to train until the loss became NaN."""
    cfg = write_config(tmp_path / "t.yaml", scheme="gumbel_matrix" if "scheme_options" in option else "soft_ordering")
    code, err = cli(capsys, "run", cfg, "--out", tmp_path / "r", option)
    assert_refused(code, err, named)
    assert not (tmp_path / "r").exists()
