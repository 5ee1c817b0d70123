"""The command line end to end on tiny budgets: outputs, their contents, and bad-input errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sharewise.cli.main import main

TINY = ["--steps", "30", "train.eval_every=10", "train.batch_size=16", "model.core.width=8", "tasks.options.names=[iris,wine,friedman1]"]


def write_config(path: Path, **extra: object) -> Path:
    cfg = {"name": "t", "tasks": {"builder": "demo"}, "model": {"core": {"width": 8, "depth": 2}}}
    cfg.update(extra)
    path.write_text("# sharewise run t.yaml\n" + yaml.safe_dump(cfg))
    return path


def test_run_writes_config_metrics_summary_and_plots(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "t.yaml")
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--scheme", "soft_ordering", "--seed", "3", "--out", str(out), "--plots",
                 *TINY]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scheme"] == "soft_ordering" and summary["seed"] == 3 and summary["steps"] == 30
    assert summary["wall_time_s"] > 0
    assert set(summary["tasks"]) == {"iris", "wine", "friedman1"}
    for name in ("iris", "wine"):
        assert 0.0 <= summary["tasks"][name]["test_error"] <= 1.0
        assert summary["tasks"][name]["test_loss"] > 0
    assert "test_error" not in summary["tasks"]["friedman1"]  # regression: loss and RMSE only
    assert summary["tasks"]["friedman1"]["test_rmse"] == pytest.approx(summary["tasks"]["friedman1"]["test_loss"] ** 0.5, rel=1e-5)
    mean = (summary["tasks"]["iris"]["test_error"] + summary["tasks"]["wine"]["test_error"]) / 2
    assert summary["mean_test_error"] == pytest.approx(mean)
    scales = summary["structure"]["scales"]
    assert len(scales) == 3 and len(scales[0]) == 2 and len(scales[0][0]) == 2  # [T][J][D]
    assert summary["meta"]["torch"] and summary["meta"]["python"] and summary["meta"]["threads"] >= 1
    assert [g["name"] for g in summary["optimizer_groups"]] == ["weights", "architecture"]
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["seed"] == 3 and resolved["train"]["steps"] == 30 and resolved["model"]["core"]["width"] == 8
    lines = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [10, 20, 30]
    assert set(lines[-1]["test"]) == {"iris", "wine", "friedman1"}
    for png in ("curves.png", "soft_order.png", "layer_usage.png"):
        assert (out / "plots" / png).stat().st_size > 1000
    assert not (out / "report.html").exists()  # the report only with --report


def test_plots_and_report_only_when_asked(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "t.yaml")
    assert main(["run", str(cfg), "--out", str(tmp_path / "bare"), *TINY]) == 0
    assert (tmp_path / "bare" / "summary.json").exists()
    assert not (tmp_path / "bare" / "plots").exists() and not (tmp_path / "bare" / "report.html").exists()
    assert main(["run", str(cfg), "--out", str(tmp_path / "full"), "--report", *TINY]) == 0
    assert (tmp_path / "full" / "report.html").stat().st_size > 1000 and (tmp_path / "full" / "report.md").exists()


def test_same_seed_same_result(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "t.yaml")
    for name in ("a", "b"):
        assert main(["run", str(cfg), "--scheme", "permuted", "--out", str(tmp_path / name), "--no-plots", *TINY]) == 0
    a, b = (json.loads((tmp_path / n / "summary.json").read_text()) for n in ("a", "b"))
    assert a["tasks"] == b["tasks"] and a["structure"] == b["structure"]


def test_compare_writes_comparison_with_confidence_intervals(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "t.yaml")
    out = tmp_path / "cmp"
    assert main(["compare", str(cfg), "--schemes", "parallel,soft_ordering", "--seeds", "0,1", "--out", str(out), *TINY]) == 0
    comp = json.loads((out / "comparison.json").read_text())
    assert set(comp["schemes"]) == {"parallel", "soft_ordering"}
    for scheme, entry in comp["schemes"].items():
        stat = entry["mean_test_error"]
        runs = [json.loads((out / scheme / f"seed{s}" / "summary.json").read_text()) for s in (0, 1)]
        values = [r["mean_test_error"] for r in runs]
        assert stat["n"] == 2 and stat["mean"] == pytest.approx(sum(values) / 2)
        assert stat["std"] == pytest.approx(abs(values[0] - values[1]) / 2 ** 0.5)
        assert stat["ci95"] == pytest.approx(12.706204736 * stat["std"] / 2 ** 0.5, rel=1e-6)
    table = (out / "comparison.md").read_text()
    assert "| parallel | 2 |" in table and "soft_ordering" in table and "±" in table
    # Re-running reuses finished cells instead of retraining them.
    before = (out / "parallel" / "seed0" / "summary.json").stat().st_mtime_ns
    assert main(["compare", str(cfg), "--schemes", "parallel", "--seeds", "0", "--out", str(out), *TINY]) == 0
    assert (out / "parallel" / "seed0" / "summary.json").stat().st_mtime_ns == before


def test_validate_and_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path / "t.yaml")
    assert main(["validate", str(cfg)]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["validate", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "soft_ordering_uniform" in listing and "uci10" in listing


@pytest.mark.parametrize(
    ("extra", "args", "expected"),
    [
        ({"trian": {"steps": 3}}, [], "trian: unknown key (did you mean 'train'?)"),
        ({"train": {"steps": "many"}}, [], "train.steps: expected int, got str 'many'"),
        ({}, ["--scheme", "soft_order"], "unknown sharing scheme 'soft_order'"),
        ({"tasks": {"builder": "uci10"}}, ["--data-dir", "/nonexistent/sharewise"], "data directory '/nonexistent/sharewise' does not exist"),
    ],
)
def test_bad_input_gives_one_clear_error_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            extra: dict, args: list[str], expected: str) -> None:
    cfg = write_config(tmp_path / "t.yaml", **extra)
    out = tmp_path / "never"
    assert main(["run", str(cfg), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert err.count("\n") <= 3, "one paragraph, not a traceback"
    assert not out.exists(), "nothing may be written for invalid input"


def test_conv_core_on_flat_inputs_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A conv core needs [C, H, W] inputs; the demo digits are flat 64-vectors."""
    cfg = write_config(tmp_path / "t.yaml", tasks={"builder": "demo", "options": {"names": ["digits"]}})
    assert main(["run", str(cfg), "--out", str(tmp_path / "x"), "model.core.kind=conv", "model.encoder.kind=channel_pad",
                 "model.core.depth=4"]) == 2
    err = capsys.readouterr().err
    assert ("model.encoder.kind=channel_pad needs image inputs [C, H, W] (or feature vectors [d] with a dense "
            "core), got [64]") in err


def test_missing_and_corrupt_data_files(tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data" / "uci10"
    data.mkdir(parents=True)
    cfg = write_config(tmp_path / "t.yaml", tasks={"builder": "uci10", "options": {"names": ["iris"]}})
    assert main(["run", str(cfg), "--out", str(tmp_path / "r"), "--data-dir", str(tmp_path / "data")]) == 2
    assert "iris.data" in capsys.readouterr().err
    lines = (shared_data / "uci10" / "iris.data").read_text().splitlines()
    lines[41] = "5.1,3.5,oops,0.2,Iris-setosa"
    (data / "iris.data").write_text("\n".join(lines) + "\n")
    assert main(["run", str(cfg), "--out", str(tmp_path / "r"), "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert "iris.data" in err and "42" in err and "oops" in err
    assert not (tmp_path / "r").exists()


def test_finished_run_is_not_overwritten_without_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path / "t.yaml")
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--no-plots", *TINY]) == 0
    before = (out / "summary.json").read_bytes()
    assert main(["run", str(cfg), "--out", str(out), "--no-plots", *TINY]) == 2
    assert "already holds a finished run" in capsys.readouterr().err
    assert (out / "summary.json").read_bytes() == before


def test_console_entry_point_runs_as_a_module(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "sharewise", "validate", "--list"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "soft_ordering" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "sharewise", "run", str(tmp_path / "missing.yaml")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr


def test_demo_trains_every_scheme_and_writes_the_comparison(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--steps", "20", "--seeds", "0", "--jobs", "1"]) == 0
    printed = capsys.readouterr().out
    comp = json.loads((out / "comparison.json").read_text())
    assert list(comp["schemes"]) == ["single_task", "parallel", "soft_ordering", "gumbel_matrix", "branched"]
    assert "| branched | 1 |" in printed  # the table is printed
    families = json.loads((out / "families.json").read_text())
    assert set(families["methods"]) == {"rsa", "gumbel", "soft_order", "gradients"}
    for method in families["methods"].values():
        assert -1.0 <= method["ari_mean"] <= 1.0 and method["compute_s"] > 0
    assert families["families"] == ["0"] * 3 + ["1"] * 3 + ["2"] * 3
    assert "ARI vs planted families" in printed and "RSA tree" in printed
    last = printed.strip().splitlines()[-1]
    assert last.startswith("demo finished in") and last.endswith(str(out / "report.html"))
    html = (out / "report.html").read_text()
    assert "Which method finds the planted families?" in html and (out / "tree" / "tree.json").exists()


def test_summary_reuses_the_best_states_evaluation_exactly(tmp_path: Path) -> None:
    """The summary takes val/test metrics from the evaluation that selected the best state; they
    must equal a fresh evaluation of best.pt (so skipping the second evaluation changes nothing)."""
    import torch

    from sharewise.runner import prepare
    from sharewise.tasks.losses import MultiTaskLoss
    from sharewise.training.evaluate import evaluate

    cfg = write_config(tmp_path / "t.yaml")
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), *TINY]) == 0
    summary = json.loads((out / "summary.json").read_text())
    _, tasks, model = prepare(yaml.safe_load((out / "config.yaml").read_text()), None)
    model.load_state_dict(torch.load(out / "best.pt", weights_only=True)["model"])
    loss_fn = MultiTaskLoss(tasks)
    test, val = evaluate(model, loss_fn, tasks, "test"), evaluate(model, loss_fn, tasks, "val")
    for name, entry in summary["tasks"].items():
        assert entry["test_loss"] == pytest.approx(test[name]["loss"], rel=1e-6, abs=1e-7)
        if "val_error" in entry:
            assert entry["val_error"] == pytest.approx(val[name]["error"], abs=1e-9)
            assert entry["test_error"] == pytest.approx(test[name]["error"], abs=1e-9)
