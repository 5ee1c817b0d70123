"""Exact resume at the trainer level: generic generator/object states, every RNG, atomic writes."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from sharewise.runner import prepare
from sharewise.training import checkpoint as ckpt
from sharewise.training.signals import RunStopped
from sharewise.training.trainer import Trainer


class _Schedule:
    def __init__(self) -> None:
        self.t = 0

    def state_dict(self) -> dict[str, int]:
        return {"t": self.t}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.t = state["t"]


class _Noisy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Linear(2, 2)
        self.inner.generator = torch.Generator().manual_seed(3)  # a generator on a nested module
        self.schedule = _Schedule()


def test_generators_and_stateful_objects_on_any_module_round_trip() -> None:
    a = _Noisy()
    torch.rand(5, generator=a.inner.generator)
    a.schedule.t = 17
    states = ckpt.module_states(a)
    assert sorted(states) == [":schedule", "inner:generator"]
    expected = torch.rand(4, generator=a.inner.generator)
    b = _Noisy()
    ckpt.load_module_states(b, states)
    assert b.schedule.t == 17
    assert torch.equal(torch.rand(4, generator=b.inner.generator), expected)


def test_state_for_a_missing_module_is_an_error() -> None:
    with pytest.raises(ckpt.CheckpointError, match=r"\['head:generator'\].*Valid here"):
        ckpt.load_module_states(_Noisy(), {"head:generator": torch.Generator().get_state()})


def test_unreadable_and_missing_checkpoints(tmp_path: Path) -> None:
    with pytest.raises(ckpt.CheckpointError, match="no checkpoint at"):
        ckpt.load_checkpoint(tmp_path / "checkpoint.pt")
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ckpt.CheckpointError, match="cannot read the checkpoint"):
        ckpt.load_checkpoint(tmp_path / "checkpoint.pt")


def test_failed_write_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "checkpoint.pt"
    ckpt.save_checkpoint(path, {"step": 5})

    def crash(obj: Any, fh: Any) -> None:
        fh.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_checkpoint(path, {"step": 10})
    monkeypatch.undo()
    assert ckpt.load_checkpoint(path)["step"] == 5
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary file left


def _trainer(cfg_dict: dict[str, Any], run_dir: Path, stop_at: int | None = None) -> Trainer:
    cfg, tasks, model = prepare(cfg_dict, None)
    stop = types.SimpleNamespace(signum=None)

    def progress(step: int, total: int, loss: float) -> None:
        if step == stop_at:
            stop.signum = 15  # as if SIGTERM arrived during this step

    return Trainer(cfg, model, tasks, run_dir=run_dir, progress=progress, stop=stop)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode,scheme,schedule", [
    ("joint", "soft_ordering", {}), ("alternating", "soft_ordering", {}),
    ("alternating", "single_task", {}),  # task-owned blocks of one tensor
    ("joint", "soft_ordering", {"lr_schedule": "cosine", "warmup_steps": 5})])  # rates set by the step alone
def test_stop_and_resume_equals_uninterrupted(tmp_path: Path, tiny: Any, mode: str, scheme: str,
                                              schedule: dict[str, Any]) -> None:
    cfg = {**tiny(mode=mode, **schedule), "scheme": scheme}
    (tmp_path / "full").mkdir()
    full_trainer = _trainer(cfg, tmp_path / "full")
    full = full_trainer.fit()

    (tmp_path / "cut").mkdir()
    with pytest.raises(RunStopped, match="stopped at step 23 .*--resume") as info:
        _trainer(cfg, tmp_path / "cut", stop_at=23).fit()
    assert info.value.exit_status == 143
    state = ckpt.load_checkpoint(tmp_path / "cut" / ckpt.CHECKPOINT_NAME)
    assert state["step"] == 23 and state["running"]["count"] == 3  # mid-way between evaluations
    torch.manual_seed(12345)  # a resumed process starts with other global RNG state
    resumed = _trainer(cfg, tmp_path / "cut")
    resumed.load_state_dict(state)
    result = resumed.fit()

    assert result.best_step == full.best_step and result.best_score == full.best_score
    for key, value in full.best_state.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(result.best_state[key], value), key
    strip = lambda h: [{k: v for k, v in r.items() if k != "elapsed_s"} for r in h]  # noqa: E731
    assert strip(result.history) == strip(full.history)
    assert all(torch.equal(a, b) for a, b in zip(resumed.model.parameters(), full_trainer.model.parameters()))


def test_selection_rules() -> None:
    from sharewise.summary import selection_score

    records = [{"step": 10, "val_loss": 3.0, "mean_val_error": 0.4, "train_loss": 9.0},
               {"step": 20, "val_loss": 5.0, "mean_val_error": 0.2, "train_loss": 8.0},
               {"step": 30, "val_loss": 9.0, "mean_val_error": 0.3, "train_loss": 7.0}]

    def best(rule: str) -> int:
        return min(records, key=lambda r: selection_score(r, rule))["step"]

    assert (best("val_loss"), best("val_error"), best("last")) == (10, 20, 30)
    no_val = [{**r, "val_loss": None, "mean_val_error": None} for r in records]
    assert min(no_val, key=lambda r: selection_score(r, "val_error"))["step"] == 30  # falls back to train loss
