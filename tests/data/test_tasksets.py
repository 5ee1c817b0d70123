"""Task sets: the tasks each builds, their splits and the paper-specific preprocessing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sharewise.data.tasksets import available_tasksets, build_tasks
from sharewise.errors import ConfigError, DataError


def test_registered_task_sets() -> None:
    assert {"demo", "uci10", "mnist_pairs", "random_patterns", "csv_folder", "synthetic_relatedness",
            "mnist_variants", "omniglot_alphabets", "latent_clusters"} <= set(available_tasksets())


def test_demo_tasks_kinds_and_fixed_split() -> None:
    a = build_tasks("demo", data_dir=None, seed=0, options={})
    b = build_tasks("demo", data_dir=None, seed=5, options={})  # the split does not depend on the run seed
    assert [(t.name, t.kind, t.n_outputs) for t in a] == [
        ("iris", "multiclass", 3), ("wine", "multiclass", 3), ("breast_cancer", "binary", 1),
        ("digits", "multiclass", 10), ("friedman1", "regression", 1)]
    for ta, tb in zip(a, b):
        assert torch.equal(ta.x_train, tb.x_train) and torch.equal(ta.y_test, tb.y_test)
        n = ta.x_train.shape[0] + ta.x_val.shape[0] + ta.x_test.shape[0]
        assert ta.x_test.shape[0] == pytest.approx(0.25 * n, abs=len(torch.unique(ta.y_train)) + 1)
        assert float(ta.x_train.min()) == 0.0 and float(ta.x_train.max()) == 1.0  # min-max fit on train


def test_uci10_paper_preprocessing(shared_data: Path) -> None:
    tasks = build_tasks("uci10", data_dir=str(shared_data), seed=0, options={})
    assert [t.name for t in tasks][:4] == ["australian", "wdbc", "ecoli", "german"]
    german = tasks[3]
    assert german.input_shape == (24,)  # the paper's 24 numeric features
    total = {t.name: t.x_train.shape[0] + t.x_val.shape[0] + t.x_test.shape[0] for t in tasks}
    assert total == {"australian": 690, "wdbc": 569, "ecoli": 336, "german": 1000, "heart-cleveland": 303,
                     "hepatitis": 155, "iris": 150, "pima": 768, "wine": 178, "yeast": 1484}
    for t in tasks:
        n = total[t.name]
        assert abs(t.x_test.shape[0] - 0.2 * n) <= t.n_outputs + 1  # the paper's 20 % held out, stratified
        assert torch.isfinite(t.x_train).all() and torch.isfinite(t.x_test).all()
    again = build_tasks("uci10", data_dir=str(shared_data), seed=3, options={})
    assert all(torch.equal(a.x_test, b.x_test) for a, b in zip(tasks, again))


def test_mnist_pairs_binary_labels(shared_data: Path) -> None:
    tasks = build_tasks("mnist_pairs", data_dir=str(shared_data), seed=0,
                        options={"pairs": [[3, 8], [1, 7]], "max_train_per_task": 500})
    assert [t.name for t in tasks] == ["3v8", "1v7"]
    t = tasks[0]
    assert t.kind == "binary" and t.input_shape == (784,) and t.x_train.shape[0] == 500
    assert t.x_test.shape[0] == 1010 + 974  # MNIST test has 1010 threes and 974 eights
    assert set(t.y_test.tolist()) == {0, 1} and float(t.x_test.max()) <= 1.0
    with pytest.raises(ConfigError, match=r"two different digits 0-9, got \[4, 4\]"):
        build_tasks("mnist_pairs", data_dir=str(shared_data), seed=0, options={"pairs": [[4, 4]]})


@pytest.mark.parametrize("rho", [0.0, 0.5, 1.0])
def test_synthetic_relatedness_cosine_equals_rho(rho: float) -> None:
    tasks = build_tasks("synthetic_relatedness", data_dir=None, seed=1,
                        options={"groups": [2, 2], "rho": rho, "n_train": 200, "n_val": 10, "n_test": 10})
    w = np.array([t.notes["weight"] for t in tasks])
    cos = (w @ w.T) / np.outer(np.linalg.norm(w, axis=1), np.linalg.norm(w, axis=1))
    assert cos[0, 1] == pytest.approx(rho, abs=1e-9) and cos[2, 3] == pytest.approx(rho, abs=1e-9)
    assert np.abs(cos[:2, 2:]).max() < 1e-9  # unrelated across groups
    # Labels follow App. A1: y = w.x + sum_i sin(i w.x + (i-1)^2) + noise (std 0.01).
    t = tasks[0]
    proj = t.x_train.double().numpy() @ w[0]
    clean = proj + sum(np.sin(i * proj + (i - 1) ** 2) for i in range(1, 7))
    residual = t.y_train[:, 0].double().numpy() - clean
    assert 0.005 < residual.std() < 0.02


def test_mnist_variants_rotation_is_clockwise_and_copies_share_data(shared_data: Path) -> None:
    tasks = build_tasks("mnist_variants", data_dir=str(shared_data), seed=0, options={"max_train_per_task": 100})
    assert [t.name for t in tasks] == ["mnist1", "mnist2", "mnist_rot3", "mnist_rot4"]
    assert tasks[0].x_train is tasks[1].x_train  # copies share memory
    plain, rot = tasks[0].x_test[0, 0], tasks[2].x_test[0, 0]
    assert torch.equal(rot, plain.flip(0).T)  # 90 degrees clockwise: new[r, c] = old[H-1-c, r]
    assert torch.equal(tasks[0].y_test, tasks[2].y_test)


def test_omniglot_alphabets_split_per_character(shared_data: Path) -> None:
    tasks = build_tasks("omniglot_alphabets", data_dir=str(shared_data), seed=0,
                        options={"n_alphabets": 2, "image_size": 28})
    assert [t.name for t in tasks] == ["Gujarati", "Sylheti"]
    for t in tasks:
        for split, per_char in (("train", 10), ("val", 4), ("test", 6)):
            counts = torch.bincount(t.split(split)[1], minlength=t.n_outputs)
            assert (counts == per_char).all()
        assert t.input_shape == (1, 28, 28)


@pytest.mark.parametrize("lazy", [False, True])
def test_omniglot_pixel_max_scales_the_ink_only(shared_data: Path, lazy: bool) -> None:
    opts = {"n_alphabets": 1, "image_size": 28, "lazy": lazy}
    base = build_tasks("omniglot_alphabets", data_dir=str(shared_data), seed=0, options=opts)[0]
    wide = build_tasks("omniglot_alphabets", data_dir=str(shared_data), seed=0, options={**opts, "pixel_max": 255})[0]
    for split in ("train", "test"):
        (x1, y1), (x255, y255) = (_first_images(t, split) for t in (base, wide))
        assert float(x1.max()) == 1.0 and float(x1.min()) == 0.0  # background 0, a fully inked pixel 1
        torch.testing.assert_close(x255, 255 * x1, rtol=1e-6, atol=0)  # the same images and split, only rescaled
        assert torch.equal(y255, y1)
    assert wide.notes["pixel_max"] == 255.0
    white = build_tasks("omniglot_alphabets", data_dir=str(shared_data), seed=0,
                        options={**opts, "pixel_max": 2, "white_background": True})[0]
    torch.testing.assert_close(_first_images(white, "train")[0], 2 * (1 - _first_images(base, "train")[0]))


def _first_images(task: Any, split: str, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    if not hasattr(task, "dataset"):
        return task.split(split)[0][:n], task.split(split)[1][:n]
    data = task.dataset(split)  # a streamed task: a Dataset per split
    items = [data[i] for i in range(n)]
    return torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items])


@pytest.mark.parametrize(("option", "bad", "message"), [
    *[("pixel_max", bad, "pixel_max must be a positive number")
      for bad in (0, -1.0, float("inf"), float("nan"), True, "255")],
    ("white_background", "yes", "white_background must be true or false")])
def test_omniglot_pixel_options_are_checked(shared_data: Path, option: str, bad: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_tasks("omniglot_alphabets", data_dir=str(shared_data), seed=0,
                    options={"n_alphabets": 1, "image_size": 28, option: bad})


def test_real_data_task_sets_need_a_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHAREWISE_DATA_DIR", raising=False)
    with pytest.raises(DataError, match="pass --data-dir DIR or set SHAREWISE_DATA_DIR"):
        build_tasks("uci10", data_dir=None, seed=0, options={})


def test_csv_folder_task_set(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    folder = tmp_path / "csvs"
    folder.mkdir()
    x = rng.uniform(size=(60, 3))
    rows = ["a,b,c,label"] + [f"{r[0]},{r[1]},{r[2]},{int(r[0] > 0.5)}" for r in x]
    (folder / "cls.csv").write_text("\n".join(rows) + "\n")
    rows = ["a,b,label"] + [f"{r[0]},{r[1]},{r[0] * 3.5 + r[1]}" for r in x]
    (folder / "reg.csv").write_text("\n".join(rows) + "\n")
    tasks = build_tasks("csv_folder", data_dir=None, seed=0, options={"folder": str(folder), "target": "label"})
    kinds = {t.name: (t.kind, t.input_shape) for t in tasks}
    assert kinds == {"cls": ("binary", (3,)), "reg": ("regression", (2,))}
    assert tasks[0].notes["kind_inferred"] is True


def test_mnist_pairs_drawn_twice_get_distinct_names(shared_data: Path) -> None:
    tasks = build_tasks("mnist_pairs", data_dir=str(shared_data), seed=0,
                        options={"pairs": [[3, 8], [3, 8]], "max_train_per_task": 50})
    assert [t.name for t in tasks] == ["3v8", "3v8-2"]


def test_duplicate_task_names_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    from sharewise.data.tasksets import _registry
    from sharewise.runner import prepare

    real = _registry.build_tasks

    def twice(name: str, **kwargs: object) -> list:
        tasks = real(name, **kwargs)  # type: ignore[arg-type]
        return tasks + tasks[:1]

    monkeypatch.setattr("sharewise.runner.build_tasks", twice)
    with pytest.raises(ConfigError, match=r"several tasks named \['iris'\]"):
        prepare({"tasks": {"builder": "demo", "options": {"names": ["iris", "wine"]}}}, None)
