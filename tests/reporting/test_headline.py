"""Seed statistics of the headline experiments (sharewise.reporting.headline) on synthetic run
directories whose numbers are known in closed form."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from types import ModuleType

import pytest

from sharewise.errors import DataError
from sharewise.reporting.headline import (
    allocation_bits,
    curve_flatness,
    headline_markdown,
    load_runs,
    paired_test,
    soft_order_summary,
    type_split,
)

ROOT = Path(__file__).resolve().parents[2]


def _write_run(root: Path, scheme: str, seed: int, err: float, *, steps: int = 1000,
               curve: list[tuple[int, float]] | None = None, structure: dict | None = None,
               notes: list[dict] | None = None) -> None:
    d = root / scheme / f"seed{seed}"
    d.mkdir(parents=True)
    names = [f"t{i}" for i in range(len(notes or [{}, {}]))]
    summary = {"name": "x", "scheme": scheme, "seed": seed, "steps": steps, "wall_time_s": 10.0 * (seed + 1),
               "best_step": steps, "mean_test_error": err, "mean_test_loss": 1.0,
               "tasks": {n: {"test_error": err} for n in names},
               "data": {n: {"notes": (notes or [{}, {}])[i]} for i, n in enumerate(names)},
               "structure": {"tasks": names, **(structure or {})}}
    (d / "summary.json").write_text(json.dumps(summary))
    lines = [{"step": s, "val_loss": 1.0, "mean_val_error": v} for s, v in (curve or [])]
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))


def test_interval_and_paired_test_match_closed_forms(tmp_path: Path) -> None:
    for seed, (a, b) in enumerate([(0.10, 0.12), (0.20, 0.21), (0.30, 0.33)]):
        _write_run(tmp_path, "gumbel_matrix", seed, a)
        _write_run(tmp_path, "shared_bottom", seed, b)
    text = headline_markdown(load_runs(tmp_path), paired=[("gumbel_matrix", "shared_bottom")])
    # mean 20 %, sample std 10 points, n 3: half-width t_{0.975,2} * 10 / sqrt(3), t_{0.975,2} = 4.302653
    assert f"| gumbel_matrix | 3 | 20.00 ± {4.302653 * 10 / math.sqrt(3):.2f} |" in text
    # differences -2, -1, -3 points: mean -2, std 1, t = -2 sqrt(3); df 2: p = 1 - |t| / sqrt(t^2 + 2)
    t = -2 * math.sqrt(3)
    p = 1 - abs(t) / math.sqrt(t * t + 2)
    res = paired_test({0: 10.0, 1: 20.0, 2: 30.0}, {0: 12.0, 1: 21.0, 2: 33.0})
    assert res is not None and res["mean_diff"] == pytest.approx(-2.0) and res["t"] == pytest.approx(t)
    assert res["p"] == pytest.approx(p, rel=1e-6) and res["ci95"] == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    assert f"-2.00 ± {4.302653 / math.sqrt(3):.2f} over seeds [0, 1, 2] (t = {t:.2f}, p = {p:.3g}, n = 3)" in text


def test_paired_test_needs_two_common_seeds_and_handles_constant_differences() -> None:
    assert paired_test({0: 1.0, 1: 2.0}, {1: 2.0, 2: 3.0}) is None  # one common seed
    res = paired_test({0: 1.0, 1: 2.0}, {0: 0.5, 1: 1.5})  # the same difference in every seed
    assert res is not None and res["p"] == 0.0 and res["mean_diff"] == pytest.approx(0.5)


def test_flatness_compares_the_last_evaluation_before_75_percent_with_the_end() -> None:
    curve = [(250, 0.5), (700, 0.30), (800, 0.29), (1000, 0.29)]
    rec = [{"step": s, "mean_val_error": v} for s, v in curve]
    f = curve_flatness(rec, 1000)
    assert (f["step_early"], f["early"], f["step_last"], f["last"]) == (700, 0.30, 1000, 0.29)
    assert f["flat"]  # fell by 0.01 < 5 % of 0.30
    rec[-1]["mean_val_error"] = 0.25
    assert not curve_flatness(rec, 1000)["flat"]  # fell by 0.05 > 0.015
    rec[-1]["mean_val_error"] = 0.40
    assert curve_flatness(rec, 1000)["flat"]  # rising: no further gain
    assert curve_flatness(rec[:1], 1000)["flat"] is False  # one point: nothing to compare
    assert curve_flatness([], 1000) is None
    loss_only = [{"step": 750, "val_loss": 2.0, "mean_val_error": None}, {"step": 1000, "val_loss": 1.99}]
    assert curve_flatness(loss_only, 1000)["metric"] == "loss"


def test_soft_order_summary_reads_argmax_entropy_and_usage() -> None:
    one_hot = [[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]]  # [T=2][J=2][D=2]
    s = soft_order_summary(one_hot)
    assert s["orders"] == ["12", "21"] and s["distinct_orders"] == 2
    assert s["entropy"] == pytest.approx(0.0, abs=1e-9) and s["max_scale"] == pytest.approx(1.0)
    assert s["usage"] == [[0.5, 0.5], [0.5, 0.5]]
    uniform = soft_order_summary([[[0.25] * 3] * 4])  # T=1, J=4, D=3
    assert uniform["entropy"] == pytest.approx(1.0) and uniform["max_scale"] == pytest.approx(0.25)


def test_type_split_per_layer_and_whole() -> None:
    alloc = {"0": [[1, 1], [1, 0]], "1": [[1, 1], [1, 0]], "2": [[1, 1], [0, 1]], "3": [[1, 1], [0, 1]]}
    assert allocation_bits(alloc) == ["11|10", "11|10", "11|01", "11|01"]
    assert type_split(alloc, [[0, 1], [2, 3]]) == {"split_layers": [1], "split": True}
    alloc["1"] = [[0, 1], [1, 0]]  # an MNIST copy differs from its twin in layer 0
    assert type_split(alloc, [[0, 1], [2, 3]]) == {"split_layers": [1], "split": False}
    same = {k: [[1, 1], [1, 1]] for k in "0123"}
    assert type_split(same, [[0, 1], [2, 3]]) == {"split_layers": [], "split": False}


def test_markdown_reports_structure_flatness_and_split(tmp_path: Path) -> None:
    notes = [{"rotation": "none"}, {"rotation": "none"}, {"rotation": "cw"}, {"rotation": "cw"}]
    alloc = {"0": [[1, 0]], "1": [[1, 0]], "2": [[0, 1]], "3": [[0, 1]]}
    curve = [(500, 0.2), (750, 0.10), (1000, 0.099)]
    _write_run(tmp_path, "gumbel_matrix", 0, 0.05, curve=curve, notes=notes,
               structure={"allocation": alloc, "active_fraction": 0.5, "budget": 0.75})
    _write_run(tmp_path, "soft_ordering", 0, 0.07, curve=curve, structure={"scales": [[[0.9, 0.1], [0.1, 0.9]]] * 4},
               notes=notes)
    text = headline_markdown(load_runs(tmp_path), accuracy=True, group_note="rotation")
    assert "| gumbel_matrix b=0.75 | 1 | 95.00 | s0: 95.00 | 10.00 -> 9.90 (1/1) | 1000 | 10 |" in text
    assert "active 0.500; allocation `10 10 01 01`; split none / cw (rotation): yes; layers split by type [0]" in text
    assert "2 distinct argmax orders" not in text and "argmax layer per depth per task `12 12 12 12`" in text


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("repro_headline", ROOT / "benchmarks" / "repro_headline.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_load_runs_and_the_script_fail_clearly_without_runs(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(DataError, match="no finished run"):
        load_runs(tmp_path)
    assert _script().main([str(tmp_path)]) == 2
    assert "no finished run" in capsys.readouterr().err


def test_script_pairs_gumbel_with_shared_bottom_by_default(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    for seed in (0, 1):
        _write_run(tmp_path, "gumbel_matrix", seed, 0.1 + 0.01 * seed)
        _write_run(tmp_path, "shared_bottom", seed, 0.2)
    assert _script().main([str(tmp_path)]) == 0
    assert "- gumbel_matrix - shared_bottom: -9.50 ±" in capsys.readouterr().out


def test_an_extended_run_gets_its_own_row_and_a_repeated_seed_is_refused(tmp_path: Path) -> None:
    for seed, err in enumerate([0.40, 0.42]):
        _write_run(tmp_path, "parallel", seed, err, steps=5000)
    _write_run(tmp_path / "ext", "parallel", 0, 0.27, steps=10000)
    ext = tmp_path / "ext" / "parallel" / "seed0" / "summary.json"
    summary = json.loads(ext.read_text())
    summary["extended_from"] = {"run_dir": str(tmp_path / "parallel" / "seed0"), "step": 5000}
    ext.write_text(json.dumps(summary))
    text = headline_markdown(load_runs(tmp_path))
    assert "| parallel | 2 | 41.00 ± " in text  # the extension is not a third seed of the 5000-step runs
    assert "| parallel, extended to 10000 steps | 1 | 27.00 |" in text
    _write_run(tmp_path / "copy", "parallel", 1, 0.42, steps=5000)
    with pytest.raises(DataError, match="both 'parallel' seed 1"):
        headline_markdown(load_runs(tmp_path))


def test_runs_of_one_scheme_with_different_lengths_get_separate_rows(tmp_path: Path) -> None:
    for seed, err in enumerate([0.56, 0.52]):
        _write_run(tmp_path, "permuted", seed, err, steps=5000)
    for seed, err in enumerate([0.30, 0.34]):
        _write_run(tmp_path / "long", "permuted", seed, err, steps=20000)
    _write_run(tmp_path, "parallel", 0, 0.40, steps=5000)
    text = headline_markdown(load_runs(tmp_path))
    assert "| permuted, 5000 steps | 2 | 54.00 ± " in text
    assert "| permuted, 20000 steps | 2 | 32.00 ± " in text
    assert "| parallel | 1 | 40.00 |" in text  # one length: the label stays the scheme


def test_validation_curves_per_label_and_the_figure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sharewise.reporting.headline import validation_curves

    for seed, curve in enumerate([[(500, 0.9), (1000, 0.5)], [(500, 0.8), (1000, 0.4)]]):
        _write_run(tmp_path / "runs", "parallel", seed, 0.4, curve=curve)
    _write_run(tmp_path / "runs", "soft_ordering", 0, 0.2, curve=[(500, 0.6), (1000, 0.3)])
    curves = validation_curves(load_runs(tmp_path / "runs"))
    assert curves == {"parallel": [[(500, 0.9), (1000, 0.5)], [(500, 0.8), (1000, 0.4)]],
                      "soft_ordering": [[(500, 0.6), (1000, 0.3)]]}
    figures = tmp_path / "figures"
    assert _script().main([str(tmp_path / "runs"), "--curves", str(figures)]) == 0
    png = figures / "runs_validation.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"learning curves: {png}" in capsys.readouterr().out


def test_curves_without_any_logged_validation_are_a_clear_error(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    _write_run(tmp_path, "parallel", 0, 0.4)  # no metrics records
    assert _script().main([str(tmp_path), "--curves", str(tmp_path / "fig")]) == 2
    assert "no validation curve to plot" in capsys.readouterr().err
    assert not (tmp_path / "fig").exists() or not any((tmp_path / "fig").iterdir())
