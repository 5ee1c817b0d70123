"""The run report: self-contained HTML with embedded plots and the metrics, plus Markdown."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest

from sharewise.cli.main import main
from sharewise.errors import ConfigError
from sharewise.reporting.report import write_report
from sharewise.runner import run


def _tiny(seed: int = 0, scheme: str = "soft_ordering") -> dict[str, Any]:
    return {"name": "tiny", "scheme": scheme, "seed": seed,
            "tasks": {"builder": "demo", "options": {"names": ["iris", "friedman1"]}},
            "model": {"core": {"width": 8, "depth": 2}},
            "train": {"steps": 6, "batch_size": 8, "eval_every": 3, "threads": 1}}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "run"
    run(_tiny(), out)
    write_report([out], out)  # the report is a step on the finished run
    return out


def test_run_writes_html_with_plots_metrics_and_config(finished: Path) -> None:
    html = (finished / "report.html").read_text()
    summary = json.loads((finished / "summary.json").read_text())
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)
    assert len(images) >= 3  # learning curves, soft order, layer usage
    assert all(base64.b64decode(img).startswith(b"\x89PNG") for img in images)
    assert f"{100 * summary['tasks']['iris']['test_error']:.2f}" in html
    assert f"<td>{summary['tasks']['friedman1']['test_rmse']:.4g}</td>" in html  # the test RMSE column
    assert "Learned soft order per task" in html and "best step 6" in html
    assert "scheme: soft_ordering" in html  # the resolved config
    assert "src='http" not in html and "<script src" not in html  # self-contained (the sort script is inline)

    md = (finished / "report.md").read_text()
    assert "| iris | multiclass |" in md and "```yaml" in md
    for link in re.findall(r"\]\((report_files/[^)]+\.png)\)", md):
        assert (finished / link).is_file()


def test_several_runs_get_the_comparison_table(finished: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other"
    run(_tiny(seed=1, scheme="parallel"), other)
    assert main(["report", str(finished), str(other), "--out", str(tmp_path / "rep")]) == 0
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "<th>scheme</th>" in html and "<td>parallel</td>" in html and "<td>soft_ordering</td>" in html
    assert html.count("<h3>") == 2 and "comparison_curves" in html
    assert "| parallel | 1 |" in (tmp_path / "rep" / "report.md").read_text()


def test_structure_is_rendered_generically() -> None:
    summary = {"name": "x", "scheme": "gumbel_matrix", "seed": 0, "steps": 1, "best_step": 1,
               "mean_test_loss": 0.1, "mean_test_error": 0.2,
               "tasks": {"a": {"kind": "binary", "test_error": 0.2, "test_loss": 0.1},
                         "b": {"kind": "binary", "test_error": 0.2, "test_loss": 0.1}},
               "structure": {"tasks": ["a", "b"], "allocation": {"0": [[1, 0], [1]], "1": [[0, 1], [1]]},
                             "task_similarity": [[1.0, 0.5], [0.5, 1.0]], "active_fraction": 0.67,
                             "tree": {"children": [["a"], ["b"]]}}}
    from sharewise.reporting import report as rep
    from sharewise.reporting._document import Document

    d = Document("t")
    rep._structure(d, summary, "")
    html = d.to_html()
    assert "allocation (task x component, layers concatenated)" in html
    assert "task similarity" in html.replace("_", " ") and "active_fraction" in html
    assert "children" in html  # the tree, as data


def test_missing_summary_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="holds no finished run"):
        write_report([tmp_path], tmp_path)
