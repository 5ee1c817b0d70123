"""Guarded training: a non-finite loss, gradient or weight stops the run, naming step, task and
quantity, and the last good checkpoint stays intact and loadable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from sharewise.cli.main import main
from sharewise.errors import TrainingError
from sharewise.runner import prepare
from sharewise.training.checkpoint import load_checkpoint
from sharewise.training.trainer import Trainer


def test_nan_input_stops_with_step_task_and_advice(tmp_path: Path, tiny: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, tasks, model = prepare(tiny(checkpoint_every=5), None)
    trainer = Trainer(cfg, model, tasks, run_dir=tmp_path)
    real_next, calls = trainer.sampler.next, [0]

    def poisoned() -> tuple[torch.Tensor, torch.Tensor]:
        x, y = real_next()
        calls[0] += 1
        if calls[0] == 7:
            x = x.clone()
            x[1, 0, 0] = float("nan")  # task 1 (wine)
        return x, y

    monkeypatch.setattr(trainer.sampler, "next", poisoned)
    with pytest.raises(TrainingError, match=r"training loss became nan at step 7 \(task\(s\) wine\)\. The last "
                                            r"good checkpoint .*checkpoint\.pt, step 5\) is kept.*train\.lr.*grad_clip"):
        trainer.fit()
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["step"] == 5
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_nan_gradient_is_caught_before_the_update(tmp_path: Path, tiny: Any) -> None:
    cfg, tasks, model = prepare(tiny(checkpoint_every=5), None)
    trainer = Trainer(cfg, model, tasks, run_dir=tmp_path)
    name, param = next((n, p) for n, p in model.named_parameters() if "heads" in n)
    calls = [0]

    def hook(grad: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        return grad * float("inf") if calls[0] == 6 else grad

    param.register_hook(hook)
    with pytest.raises(TrainingError, match=rf"gradient norm became (nan|inf) at step 6 \(update of task\(s\) "
                                            rf"iris, wine, friedman1; non-finite gradient in {name}\); the update "
                                            r"was not applied.*step 5\) is kept"):
        trainer.fit()
    before = param.detach().clone()
    assert torch.isfinite(before).all()  # the bad update never reached the weights
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 5


def test_an_overflowing_norm_of_finite_gradients_says_so(tmp_path: Path, tiny: Any) -> None:
    """Every gradient finite, their summed norm inf (float32 overflow): the message says that,
    instead of naming no parameter."""
    cfg, tasks, model = prepare(tiny(), None)
    trainer = Trainer(cfg, model, tasks)
    next(p for p in model.parameters()).register_hook(lambda g: torch.full_like(g, 3e38))
    with pytest.raises(TrainingError, match=r"gradient norm became inf at step 1 .*every gradient is finite, but "
                                            r"their summed norm overflowed"):
        trainer.fit()


def test_grad_clip_path_also_guards(tmp_path: Path, tiny: Any) -> None:
    cfg, tasks, model = prepare(tiny(grad_clip=1.0), None)
    trainer = Trainer(cfg, model, tasks)
    next(p for p in model.parameters()).register_hook(lambda g: g * float("nan"))
    with pytest.raises(TrainingError, match="gradient norm became nan at step 1"):
        trainer.fit()


def test_absurd_learning_rate_exits_2_and_keeps_checkpoint(tmp_path: Path, tiny: Any,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    (tmp_path / "c.yaml").write_text(yaml.safe_dump(tiny(lr=1e30, checkpoint_every=1)))
    out = tmp_path / "run"
    code = main(["run", str(tmp_path / "c.yaml"), "--out", str(out), "--no-plots", "--no-report"])
    err = capsys.readouterr().err
    assert code == 2
    assert "at step 2" in err and "train.lr" in err and "grad_clip" in err, err
    assert "checkpoint.pt, step 1) is kept" in err
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 1
    assert not (out / "summary.json").exists()


def test_overflowing_weights_are_not_checkpointed(tmp_path: Path, tiny: Any) -> None:
    cfg, tasks, model = prepare(tiny(checkpoint_every=3), None)
    weight = next(p for p in model.parameters())

    def overflow(step: int, total: int, loss: float) -> None:
        if step == 6:  # as if a finite but huge update overflowed a weight
            with torch.no_grad():
                weight[0] = float("inf")

    trainer = Trainer(cfg, model, tasks, run_dir=tmp_path, progress=overflow)
    with pytest.raises(TrainingError, match=r"became non-finite at step 6; the checkpoint was not written.*"
                                            r"step 3\) is kept"):
        trainer.fit()
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 3


def test_the_guards_gradient_norm_is_torchs_total_norm() -> None:
    """The guard's own total norm (no per-call device grouping) equals torch's, bit for bit."""
    from sharewise.training.trainer import _total_norm

    gen = torch.Generator().manual_seed(0)
    grads = [torch.randn(5, 7, generator=gen) * 1e3, torch.randn(3, generator=gen), torch.randn(2, 2, 2, generator=gen)]
    assert torch.equal(_total_norm(grads), torch.nn.utils.get_total_norm(grads, foreach=True))
    grads[1][0] = float("nan")
    assert not bool(torch.isfinite(_total_norm(grads)))
    mixed = [torch.ones(3), torch.ones(2, dtype=torch.float64)]  # the fallback: torch's grouping
    assert torch.equal(_total_norm(mixed), torch.nn.utils.get_total_norm(mixed, foreach=True))
