"""Training on streamed tasks: the same model as in-memory training, and exact resume after a stop
while DataLoader workers had batches prefetched."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sharewise.builders import build_model
from sharewise.config import parse_config
from sharewise.data.tasksets import build_tasks
from sharewise.training.trainer import Trainer

OMNI = {"alphabets": ["Gujarati", "Korean"], "image_size": 14}


def _cfg(steps: int, lazy: bool, workers: int = 0):
    return parse_config({"name": "s", "scheme": "soft_ordering", "seed": 1,
                         "tasks": {"builder": "omniglot_alphabets", "options": {**OMNI, "lazy": lazy}},
                         "model": {"core": {"width": 8, "depth": 2}},
                         "train": {"steps": steps, "eval_every": 4, "batch_size": 8, "data_workers": workers,
                                   "eval_batch_size": 64}})


def _train(shared_data: Path, steps: int, lazy: bool, workers: int = 0, state: dict | None = None) -> Trainer:
    cfg = _cfg(steps, lazy, workers)
    tasks = build_tasks("omniglot_alphabets", data_dir=str(shared_data), seed=1, options=cfg.tasks.options)
    torch.manual_seed(cfg.seed)
    trainer = Trainer(cfg, build_model(cfg, tasks), tasks)
    if state is not None:
        trainer.load_state_dict(state)
    trainer.fit()
    return trainer


@pytest.mark.slow
def test_streamed_training_equals_in_memory_and_resumes_exactly(shared_data: Path) -> None:
    mem = _train(shared_data, 8, lazy=False)
    full = _train(shared_data, 8, lazy=True, workers=2)
    for (name, a), b in zip(mem.model.state_dict().items(), full.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert [r["test"] for r in mem.history] == [r["test"] for r in full.history]  # streamed evaluation
    half = _train(shared_data, 4, lazy=True, workers=2)
    resumed = _train(shared_data, 8, lazy=True, workers=1, state=half.state_dict())
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
