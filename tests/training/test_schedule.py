"""Learning-rate schedules: torch's reference shapes, every group scaled alike, clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from sharewise.cli.main import main
from sharewise.config import parse_config
from sharewise.errors import ConfigError
from sharewise.runner import prepare
from sharewise.training.schedule import LRSchedule, lr_factor
from sharewise.training.trainer import Trainer


def _torch_rates(scheduler_cls: Any, steps: int, **kwargs: Any) -> list[float]:
    """The rate torch's scheduler gives each of ``steps`` updates of a base rate of 1."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = scheduler_cls(opt, **kwargs)
    rates = []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return rates


@pytest.mark.parametrize("min_ratio", [0.0, 0.1])
def test_cosine_and_linear_match_torch_schedulers(min_ratio: float) -> None:
    steps = 37
    cosine = _torch_rates(torch.optim.lr_scheduler.CosineAnnealingLR, steps, T_max=steps, eta_min=min_ratio)
    linear = _torch_rates(torch.optim.lr_scheduler.LinearLR, steps, start_factor=1.0, end_factor=min_ratio,
                          total_iters=steps)
    ours_cos = [lr_factor(s, steps, "cosine", 0, min_ratio) for s in range(1, steps + 1)]
    ours_lin = [lr_factor(s, steps, "linear", 0, min_ratio) for s in range(1, steps + 1)]
    assert ours_cos == pytest.approx(cosine, abs=1e-12)
    assert ours_lin == pytest.approx(linear, abs=1e-12)
    assert ours_cos[0] == 1.0 and min_ratio < ours_cos[-1] < 0.01 + min_ratio  # the last update still moves


def test_warmup_rises_linearly_then_the_decay_spans_the_rest() -> None:
    steps, warmup = 20, 4
    rates = [lr_factor(s, steps, "cosine", warmup) for s in range(1, steps + 1)]
    assert rates[:warmup] == [0.25, 0.5, 0.75, 1.0]
    after = [lr_factor(s, steps - warmup, "cosine") for s in range(1, steps - warmup + 1)]
    assert rates[warmup:] == pytest.approx(after)  # the decay is the plain schedule over the remaining steps
    assert [lr_factor(s, steps, "constant", warmup) for s in (1, 4, 5, 20)] == [0.25, 1.0, 1.0, 1.0]


def test_a_constant_schedule_leaves_the_groups_untouched() -> None:
    groups = [{"lr": 0.3}, {"lr": 0.01}]
    schedule = LRSchedule([1.0, 1.0], 10, "constant")
    assert schedule.apply(groups, 5) == 1.0 and groups == [{"lr": 0.3}, {"lr": 0.01}]


def test_every_group_follows_the_factor_and_keeps_its_ratio(tiny: Any) -> None:
    # Soft ordering has a weights group and an architecture group (the scale logits).
    cfg, tasks, model = prepare(tiny(steps=12, lr_schedule="cosine", warmup_steps=3, min_lr_ratio=0.1,
                                     arch_lr=0.02), None)
    trainer = Trainer(cfg, model, tasks)
    names = [g["name"] for g in trainer.optimizer.param_groups]
    assert "architecture" in names and "weights" in names
    base = {"weights": cfg.train.lr, "architecture": 0.02}
    for step in range(1, 13):
        trainer.train_step(step)
        factor = lr_factor(step, 12, "cosine", 3, 0.1)
        for group in trainer.optimizer.param_groups:
            assert group["lr"] == pytest.approx(base[group["name"]] * factor), (step, group["name"])
    trainer.step = 11
    trainer.fit()  # the last step: the logged factor is the one the update used
    assert trainer.history[-1]["lr_factor"] == pytest.approx(lr_factor(12, 12, "cosine", 3, 0.1))


def test_the_decay_changes_the_trained_parameters(tiny: Any) -> None:
    """The rates reach the optimiser's update: with a steep decay the parameters move less."""
    def moved(**train: Any) -> float:
        cfg, tasks, model = prepare(tiny(steps=20, **train), None)
        before = [p.detach().clone() for p in model.parameters()]
        Trainer(cfg, model, tasks).fit()
        return sum(float((p.detach() - b).norm()) for p, b in zip(model.parameters(), before))

    constant, decayed = moved(), moved(lr_schedule="linear", warmup_steps=10)
    assert decayed < 0.8 * constant


@pytest.mark.parametrize("train,message", [
    ({"warmup_steps": 40}, "train.warmup_steps: 40 warm-up steps leave none"),
    ({"min_lr_ratio": 0.1}, "train.min_lr_ratio: has no effect with train.lr_schedule=constant"),
    ({"lr_schedule": "cosine", "min_lr_ratio": 1.5}, "must be in [0, 1], got 1.5"),
    ({"lr_schedule": "step"}, "train.lr_schedule"),
])
def test_bad_schedule_settings_are_named(tiny: Any, train: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(tiny(**train))
    assert message in str(info.value)


def test_extending_a_decayed_run_is_refused(tmp_path: Path, tiny: Any, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "cosine.yaml"
    config.write_text(yaml.safe_dump(tiny(steps=10, lr_schedule="cosine")))
    run = tmp_path / "run"
    assert main(["run", str(config), "--out", str(run), "--no-plots", "--no-report"]) == 0
    capsys.readouterr()
    assert main(["extend", str(run), "--steps", "20", "--out", str(tmp_path / "longer")]) != 0
    err = capsys.readouterr().err
    assert "train.lr_schedule=cosine" in err and "train.steps=20" in err and "Traceback" not in err
    assert not (tmp_path / "longer").exists() or not any((tmp_path / "longer").iterdir())
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["lr_factor"] == pytest.approx(lr_factor(10, 10, "cosine"))
