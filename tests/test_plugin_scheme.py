"""A scheme from a module outside the package: one file plus its registered name, nothing else
edited. Through the CLI it is listed, its option values are validated, it trains, stops and
resumes exactly, and its own renderer draws its structure in the plots and the report."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from sharewise.cli.main import main

PLUGIN = '''
"""A test scheme: hard sharing with a learned per-task output gain (an architecture parameter)."""
import os
import signal
from typing import Annotated

import torch
from torch import nn

from sharewise.options import Range
from sharewise.sharing import SharingScheme, register_scheme
from sharewise.sharing.base import StructureFigure, task_list

STOP_AT_UPDATE = None  # set by the test: send ourselves SIGINT before this update


class GainShared(SharingScheme):
    def __init__(self, core, n_tasks, gain, lr_multiple):
        super().__init__(n_tasks)
        self.bank, self.depth = core.make_bank(core.depth), core.depth
        self.gain = nn.Parameter(torch.full((n_tasks,), float(gain)))
        self.lr_multiple = lr_multiple

    def forward(self, x, tasks=None):
        t, b = x.shape[:2]
        y = x.reshape(t * b, *x.shape[2:])
        for k in range(self.depth):
            y = self.bank.forward_one(k, y)
        g = self.gain[task_list(tasks, self.n_tasks)]  # [T']
        return y.view(t, b, *y.shape[1:]) * g.view(-1, *([1] * (y.dim())))

    def architecture_parameters(self):
        return [self.gain]

    def architecture_lr(self, lr):
        return lr * self.lr_multiple

    def on_update(self, n_updates):
        if STOP_AT_UPDATE is not None and n_updates == STOP_AT_UPDATE:
            os.kill(os.getpid(), signal.SIGINT)

    def step_metrics(self):
        return {"mean_gain": float(self.gain.detach().mean())}

    def learned_structure(self):
        return {"gain": self.gain.detach().tolist()}

    @classmethod
    def render_structure(cls, structure, records=()):
        import matplotlib.pyplot as plt

        rest = dict(structure)
        gain = rest.pop("gain")
        fig, ax = plt.subplots()
        ax.bar(range(len(gain)), gain)
        return [StructureFigure("gain", fig, "learned gain per task (drawn by GainShared)")], rest


@register_scheme("gain_shared")
def build_gain_shared(core, n_tasks, *, seed=0, gain: Annotated[float, Range(0, low_open=True)] = 1.0,
                      lr_multiple: Annotated[float, Range(1, 100)] = 2.0) -> GainShared:
    return GainShared(core, n_tasks, gain, lr_multiple)
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    import importlib
    import sys

    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "gain_plugin_i12.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(folder))
    yield lambda: importlib.import_module("gain_plugin_i12")
    sys.modules.pop("gain_plugin_i12", None)
    from sharewise.sharing._registry import SCHEMES

    SCHEMES._builders.pop("gain_shared", None)


def _config(tmp_path: Path) -> Path:
    cfg = {"name": "plugin", "imports": ["gain_plugin_i12"], "scheme": "gain_shared",
           "scheme_options": {"gain": 0.5},
           "tasks": {"builder": "demo", "options": {"names": ["iris", "friedman1"]}},
           "model": {"core": {"width": 8, "depth": 2}},
           "train": {"steps": 6, "batch_size": 8, "eval_every": 2, "checkpoint_every": 2, "threads": 1}}
    path = tmp_path / "plugin.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
def test_outside_scheme_is_listed_validated_trained_resumed_plotted_and_reported(
        plugin: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    assert main(["validate", str(config), "--list"]) == 0
    listed = capsys.readouterr().out
    assert "gain_shared" in listed.splitlines()[0] and "plugin.yaml: OK (scheme gain_shared" in listed

    assert main(["validate", str(config), "scheme_options.gain=0", "scheme_options.lr_multiple=500"]) == 2
    err = capsys.readouterr().err
    assert "scheme_options.gain: expected a value > 0, got int 0" in err
    assert "scheme_options.lr_multiple: expected a value in [1, 100], got int 500" in err

    full = tmp_path / "full"
    assert main(["run", str(config), "--out", str(full)]) == 0
    module = plugin()
    module.STOP_AT_UPDATE = 3  # SIGINT before the 4th update: the run checkpoints after step 4 and stops
    stopped = tmp_path / "stopped"
    try:
        assert main(["run", str(config), "--out", str(stopped)]) == 130
    finally:
        module.STOP_AT_UPDATE = None
    assert not (stopped / "summary.json").exists()
    assert main(["run", "--resume", str(stopped), "--plots", "--report"]) == 0
    a = json.loads((full / "summary.json").read_text())
    b = json.loads((stopped / "summary.json").read_text())
    assert b["resumed_at_steps"] and b["resumed_at_steps"][0] < 6
    assert b["structure"]["gain"] == a["structure"]["gain"]  # the architecture parameter resumed exactly
    assert b["selection_score"] == a["selection_score"] and b["tasks"] == a["tasks"]
    groups = {g["name"]: g for g in b["optimizer_groups"]}
    assert groups["architecture"]["lr"] == pytest.approx(2.0 * groups["weights"]["lr"])  # its own rule
    assert (stopped / "plots" / "gain.png").stat().st_size > 0  # its own renderer
    assert "learned gain per task (drawn by GainShared)" in (stopped / "report.html").read_text()
    # Where the scheme is not registered (another process, the module not installed), reporting
    # imports nothing a run directory names: the structure is shown as data.
    from sharewise.sharing._registry import SCHEMES

    SCHEMES._builders.pop("gain_shared")
    assert main(["report", str(stopped)]) == 0
    html = (stopped / "report.html").read_text()
    assert "drawn by GainShared" not in html and "gain (task x component" in html
