"""Balancing in the trainer: exact resume, both training modes, the optimiser group."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import pytest
import torch

from sharewise.runner import prepare
from sharewise.training import checkpoint as ckpt
from sharewise.training.signals import RunStopped
from sharewise.training.trainer import Trainer

pytest.importorskip("torchjd", reason="sharewise[jd] is installed by `make test`; this skip is for bare installs")


def _trainer(cfg_dict: dict[str, Any], run_dir: Path, stop_at: int | None = None) -> Trainer:
    cfg, tasks, model = prepare(cfg_dict, None)
    stop = types.SimpleNamespace(signum=None)

    def progress(step: int, total: int, loss: float) -> None:
        if step == stop_at:
            stop.signum = 15

    return Trainer(cfg, model, tasks, run_dir=run_dir, progress=progress, stop=stop)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode,scheme,train", [
    ("joint", "gumbel_matrix", {"weighting": "uncertainty", "aggregator": "upgrad", "structure_aware": True}),
    ("alternating", "soft_ordering", {"weighting": "dwa", "weighting_options": {"window": 4}}),
    ("joint", "soft_ordering", {"weighting": "gradnorm", "weighting_lr": 0.05}),
    ("alternating", "single_task", {"weighting": "uncertainty"}),  # per-task log-variances and copies
])
def test_stop_and_resume_equals_uninterrupted(tmp_path: Path, tiny: Any, mode: str, scheme: str,
                                              train: dict[str, Any]) -> None:
    cfg = {**tiny(mode=mode, **train), "scheme": scheme}
    (tmp_path / "full").mkdir()
    full_trainer = _trainer(cfg, tmp_path / "full")
    full = full_trainer.fit()
    (tmp_path / "cut").mkdir()
    with pytest.raises(RunStopped):
        _trainer(cfg, tmp_path / "cut", stop_at=23).fit()
    state = ckpt.load_checkpoint(tmp_path / "cut" / ckpt.CHECKPOINT_NAME)
    assert "balancing" in state
    torch.manual_seed(12345)
    resumed = _trainer(cfg, tmp_path / "cut")
    resumed.load_state_dict(state)
    result = resumed.fit()
    strip = lambda h: [{k: v for k, v in r.items() if k != "elapsed_s"} for r in h]  # noqa: E731
    assert strip(result.history) == strip(full.history)
    assert all(torch.equal(a, b) for a, b in zip(resumed.model.parameters(), full_trainer.model.parameters()))
    for a, b in zip(resumed.balancer.parameters(), full_trainer.balancer.parameters()):
        assert torch.equal(a, b)
    # the weights moved (the test would pass vacuously on a frozen weighting otherwise)
    weights = full.history[-1]["balancing"]
    assert weights and any(abs(v - 1.0) > 1e-3 for v in weights.values()), weights


def test_weighting_parameters_get_their_own_optimiser_group(tiny: Any, tmp_path: Path) -> None:
    cfg = {**tiny(weighting="uncertainty", weighting_lr=0.01)}
    trainer = _trainer(cfg, tmp_path)
    groups = {g["name"]: g for g in trainer.optimizer_groups}
    assert groups["loss_weights"] == {"name": "loss_weights", "lr": 0.01, "n_params": 3}
    assert trainer.optimizer.param_groups[-1]["params"][0] is trainer.balancer.weighting.log_variance


def test_resuming_a_plain_checkpoint_with_balancing_is_refused(tiny: Any, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    _trainer(tiny(steps=2), tmp_path / "a").fit()
    state = ckpt.load_checkpoint(tmp_path / "a" / ckpt.CHECKPOINT_NAME)
    with pytest.raises(Exception, match="written without loss weighting"):
        _trainer(tiny(steps=2, weighting="uncertainty"), tmp_path).load_state_dict(state)
