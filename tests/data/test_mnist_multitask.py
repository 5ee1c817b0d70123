"""The shared-input multi-task MNIST benchmark: shapes, shared tensors, targets that match the images."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sharewise.data.tasksets import build_tasks
from sharewise.errors import ConfigError

OPTS = {"canvas": 24, "mask_size": 6, "n_train": 300, "n_val": 50, "n_test": 100}


@pytest.fixture(scope="module")
def tasks(shared_data: Path):
    return build_tasks("mnist_multitask", data_dir=str(shared_data), seed=0, options=OPTS)


def test_seven_tasks_on_one_input_tensor(tasks) -> None:
    assert [t.name for t in tasks] == ["digit", "parity", "ge5", "position", "rotation", "scale", "mask"]
    assert [t.n_outputs for t in tasks] == [10, 1, 1, 2, 1, 1, 36]
    assert all(t.x_train is tasks[0].x_train and t.x_test is tasks[0].x_test for t in tasks)
    assert tasks[0].x_train.shape == (300, 1, 24, 24) and tasks[0].x_val.shape[0] == 50
    digit = tasks[0].y_train
    assert torch.equal(tasks[1].y_train, digit % 2) and torch.equal(tasks[2].y_train, (digit >= 5).long())
    for t in tasks[3:6]:
        assert t.y_train.abs().max() <= 1.0


def test_targets_match_the_images(tasks) -> None:
    x = tasks[0].x_train[:, 0]  # [N, H, W]
    ink = x.sum((1, 2))  # [N]
    grid = (torch.arange(24) + 0.5) / 12 - 1  # pixel centres in [-1, 1]
    cx = (x.sum(1) * grid).sum(1) / ink  # [N] ink centre of mass, x
    cy = (x.sum(2) * grid).sum(1) / ink
    pos = tasks[3].y_train
    assert torch.corrcoef(torch.stack([cx, pos[:, 0]]))[0, 1] > 0.9
    assert torch.corrcoef(torch.stack([cy, pos[:, 1]]))[0, 1] > 0.9
    area = tasks[6].y_train.sum(1)  # ink cells of the mask
    assert torch.corrcoef(torch.stack([area, tasks[5].y_train[:, 0]]))[0, 1] > 0.5  # bigger digit, more ink


def test_seeded_subset_and_bad_names(shared_data: Path, tasks) -> None:
    again = build_tasks("mnist_multitask", data_dir=str(shared_data), seed=5,
                        options={**OPTS, "tasks": ["scale", "digit"]})
    assert [t.name for t in again] == ["scale", "digit"]
    assert torch.equal(again[0].x_train, tasks[0].x_train)  # data_seed, not the run seed, draws the data
    with pytest.raises(ConfigError, match=r"got \['digit', 'colour'\]"):
        build_tasks("mnist_multitask", data_dir=str(shared_data), seed=0, options={**OPTS, "tasks": ["digit", "colour"]})
