"""`sharewise extend`: a run of N steps continued to M equals a run planned for M steps, and the
source run directory is left exactly as it was."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from sharewise.cli.main import main
from sharewise.training.io import read_jsonl

RESULT_KEYS = ("tasks", "best_step", "selection_score", "mean_test_error", "mean_test_loss", "structure")


def _config(tmp_path: Path, scheme: str, steps: int, **train: Any) -> Path:
    cfg = {
        "name": "tiny",
        "scheme": scheme,
        "tasks": {"builder": "demo", "options": {"names": ["iris", "wine", "friedman1"]}},
        "model": {"core": {"width": 16, "depth": 3, "dropout": 0.2}},
        "train": {"steps": steps, "batch_size": 16, "eval_every": 10, "threads": 1, **train},
    }
    path = tmp_path / f"{scheme}_{steps}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _strip(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in records]


@pytest.mark.parametrize("mode,scheme", [("joint", "soft_ordering"), ("alternating", "gumbel_matrix")])
def test_extended_run_equals_the_longer_run(tmp_path: Path, mode: str, scheme: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    # The Gumbel temperature is a function of the update count: continuing must carry it on.
    short, whole, longer = tmp_path / "short", tmp_path / "whole", tmp_path / "longer"
    assert main(["run", str(_config(tmp_path, scheme, 30, mode=mode)), "--out", str(short)]) == 0
    assert main(["run", str(_config(tmp_path, scheme, 60, mode=mode)), "--out", str(whole)]) == 0
    before = _digest(short)
    assert main(["extend", str(short), "--steps", "60", "--out", str(longer)]) == 0
    assert "-> " + str(longer) in capsys.readouterr().out

    assert _digest(short) == before, "the source run must not be written"
    extended = json.loads((longer / "summary.json").read_text())
    reference = json.loads((whole / "summary.json").read_text())
    for key in RESULT_KEYS:
        assert extended[key] == reference[key], key
    assert extended["steps"] == 60
    assert extended["extended_from"]["step"] == 30 and extended["extended_from"]["planned_steps"] == 30
    assert extended["extended_from"]["run_dir"] == str(short.resolve())
    assert _strip(read_jsonl(longer / "metrics.jsonl")) == _strip(read_jsonl(whole / "metrics.jsonl"))
    a = torch.load(longer / "best.pt", weights_only=True)["model"]
    b = torch.load(whole / "best.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert yaml.safe_load((longer / "config.yaml").read_text())["train"]["steps"] == 60


def test_off_grid_end_keeps_its_extra_evaluation_and_the_same_parameters(tmp_path: Path) -> None:
    # The old end (step 25) is not on the eval grid of 10: its record stays, nothing else changes.
    short, whole, longer = tmp_path / "short", tmp_path / "whole", tmp_path / "longer"
    assert main(["run", str(_config(tmp_path, "parallel", 25, select_by="last")), "--out", str(short)]) == 0
    assert main(["run", str(_config(tmp_path, "parallel", 40, select_by="last")), "--out", str(whole)]) == 0
    assert main(["extend", str(short), "--steps", "40", "--out", str(longer)]) == 0
    steps = [r["step"] for r in read_jsonl(longer / "metrics.jsonl")]
    assert steps == [10, 20, 25, 30, 40]
    a = torch.load(longer / "best.pt", weights_only=True)["model"]
    b = torch.load(whole / "best.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_extend_errors_name_the_problem_and_write_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "source"
    assert main(["run", str(_config(tmp_path, "parallel", 20)), "--out", str(source)]) == 0
    capsys.readouterr()
    before = _digest(source)

    def refused(argv: list[str], message: str) -> None:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err

    refused(["extend", str(source), "--steps", "20", "--out", str(tmp_path / "a")],
            "--steps 20 does not extend")
    refused(["extend", str(source), "--steps", "40", "--out", str(source)], "is the run being extended")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("my own file")
    refused(["extend", str(source), "--steps", "40", "--out", str(tmp_path / "mine")], "sharewise did not create")
    refused(["extend", str(tmp_path / "nothing"), "--steps", "40", "--out", str(tmp_path / "b")],
            "is not a run directory that can be extended (no config.yaml)")
    text = (source / "config.yaml").read_text()
    (source / "config.yaml").write_text(text.replace("lr: 0.001", "lr: 0.5"))
    refused(["extend", str(source), "--steps", "40", "--out", str(tmp_path / "c")], "differs from the configuration")
    (source / "config.yaml").write_text(text)

    assert not any((tmp_path / name).exists() for name in ("a", "b", "c"))
    assert (tmp_path / "mine" / "notes.txt").read_text() == "my own file"
    assert _digest(source) == before


def test_prepare_only_then_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, longer = tmp_path / "source", tmp_path / "longer"
    assert main(["run", str(_config(tmp_path, "parallel", 20)), "--out", str(source)]) == 0
    assert main(["extend", str(source), "--steps", "30", "--out", str(longer), "--prepare-only"]) == 0
    assert f"sharewise run --resume {longer}" in capsys.readouterr().out
    assert not (longer / "summary.json").exists()
    assert main(["run", "--resume", str(longer)]) == 0
    summary = json.loads((longer / "summary.json").read_text())
    assert summary["steps"] == 30 and summary["resumed_at_steps"][-1] == 20


def test_extend_that_cannot_start_removes_its_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A source whose model state this version cannot load (here: a parameter removed from the
    checkpoint, as a renamed parameter would look) fails before any step; the new folder is
    removed and the source is untouched."""
    source, out = tmp_path / "source", tmp_path / "longer"
    assert main(["run", str(_config(tmp_path, "parallel", 20)), "--out", str(source)]) == 0
    state = torch.load(source / "checkpoint.pt", weights_only=True)
    model_key = next(k for k in ("model", "model_state") if k in state)
    state[model_key].pop(next(iter(state[model_key])))
    torch.save(state, source / "checkpoint.pt")
    before = _digest(source)
    capsys.readouterr()
    assert main(["extend", str(source), "--steps", "40", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "was removed" in err and "cannot load" in err and "Traceback" not in err, err
    assert not out.exists()
    assert _digest(source) == before
