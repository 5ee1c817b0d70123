"""The user's own networks through the whole library (issue 13): the branched pipeline end to end
on the ResNet-18-style backbone split into four stages, and a YAML config naming user modules
through the run directory, the report and an exact resume."""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any

import pytest
import torch

from sharewise.assemble import assemble_model
from sharewise.analysis import best_tree as search
from sharewise.components.resnet import resnet18_stages
from sharewise.config import parse_config
from sharewise.model import MultiTaskModel
from sharewise.pipelines.affinity import compute_affinity
from sharewise.reporting.report import write_report
from sharewise.runner import prepare, run
from sharewise.sharing import Branched
from sharewise.tasks.losses import MultiTaskLoss
from sharewise.tasks.spec import TaskData
from sharewise.training import checkpoint as ckpt
from sharewise.training.signals import RunStopped
from sharewise.training.trainer import Trainer

WIDTH = 0.0625  # 4-8-16-32 filters


def image_tasks(n: int = 96) -> list[TaskData]:
    """Three tasks on the same 1 x 16 x 16 images (shared inputs, as the branched method assumes)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, 16, 16, generator=gen)
    x[: n // 2, :, :8] += 1.0  # bright top half for half of the images
    top = x[:, 0, :8].mean((1, 2)) > x[:, 0, 8:].mean((1, 2))
    quadrant = x[:, 0].reshape(n, 2, 8, 2, 8).mean((2, 4)).reshape(n, 4).argmax(1)
    ink = x.mean((1, 2, 3), keepdim=False).unsqueeze(1)
    cut = [slice(0, 64), slice(64, 80), slice(80, n)]

    def task(name: str, kind: str, n_out: int, y: torch.Tensor) -> TaskData:
        return TaskData(name, kind, n_out, *(t for s in cut for t in (x[s], y[s])))  # type: ignore[arg-type]

    return [task("top", "binary", 1, top.long()), task("quadrant", "multiclass", 4, quadrant),
            task("ink", "regression", 1, (ink - ink.mean()) / ink.std())]


def train_cfg(steps: int) -> Any:
    return parse_config({"train": {"steps": steps, "batch_size": 16, "eval_every": steps, "lr": 0.01, "threads": 1}})


def fixed_batch_loss(model: MultiTaskModel, tasks: list[TaskData]) -> float:
    loss_fn = MultiTaskLoss(tasks)
    x = tasks[0].x_train[:32].unsqueeze(0).expand(len(tasks), -1, -1, -1, -1)  # [T, B, 1, 16, 16]
    y = torch.stack([loss_fn_target(t) for t in tasks])
    model.train()
    with torch.no_grad():
        return float(loss_fn(model(x), y)[0].sum())


def loss_fn_target(task: TaskData) -> torch.Tensor:
    y = task.y_train[:32]
    return y.float().reshape(32, -1)[:, :1] if task.kind == "regression" else y.float().unsqueeze(1)


def build(scheme: str, tasks: list[TaskData], **options: Any) -> MultiTaskModel:
    torch.manual_seed(0)
    return assemble_model(scheme, n_outputs=[t.n_outputs for t in tasks], input_shape=[1, 16, 16],
                          blocks=resnet18_stages(WIDTH, in_channels=1), options=options)


@pytest.mark.slow
def test_branched_pipeline_end_to_end_on_resnet18_stages() -> None:
    tasks = image_tasks()
    single = build("single_task", tasks)
    Trainer(train_cfg(8), single, tasks).fit()

    affinity = compute_affinity(single, tasks, k=16)  # RSA at the four stage boundaries
    assert affinity["locations"] == ["block1", "block2", "block3", "block4"]
    stages = resnet18_stages(WIDTH, in_channels=1)
    assert affinity["block_params"] == [sum(p.numel() for p in s.parameters()) for s in stages]
    shared = build("shared_encoder", tasks)
    n_shared, n_single = (sum(p.numel() for p in m.parameters()) for m in (shared, single))
    budget = (n_shared + n_single) // 2
    tree = search(affinity, budget, beam=None)
    assert n_shared <= tree["params"] <= budget

    branched = build("branched", tasks, tree=tree)
    assert isinstance(branched.scheme, Branched)
    assert sum(p.numel() for p in branched.parameters()) == tree["params"]
    groups = [len(p) for p in tree["partitions"]]
    assert [type(m).__name__ for m in branched.scheme.bank.layers] == ["Sequential"] * sum(groups)

    before = fixed_batch_loss(branched, tasks)
    Trainer(train_cfg(15), branched, tasks).fit()
    after = fixed_batch_loss(branched, tasks)
    assert after < before, (before, after)


USER_MODULE = '''
from torch import nn

class MLPBlock(nn.Module):
    def __init__(self, width: int, dropout: float = 0.2) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.drop = nn.Dropout(dropout)  # draws from the global RNG: resume must restore it

    def forward(self, x):
        return x + self.drop(self.fc(x).relu())
'''


def yaml_config(**train: Any) -> dict[str, Any]:
    block = {"_component_": "usernet_resume_i13.MLPBlock", "width": 16}
    return {
        "name": "byo", "scheme": "soft_ordering", "seed": 3,
        "tasks": {"builder": "demo", "options": {"names": ["iris", "wine", "friedman1"]}},
        "model": {"core": {"width": 16, "blocks": [block, block, block]}},
        "train": {"steps": 40, "batch_size": 16, "eval_every": 10, "checkpoint_every": 15, "threads": 1, **train},
    }


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "usernet_resume_i13.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))


def _trainer(cfg_dict: dict[str, Any], run_dir: Path, stop_at: int | None = None) -> Trainer:
    cfg, tasks, model = prepare(cfg_dict, None)
    stop = types.SimpleNamespace(signum=None)

    def progress(step: int, total: int, loss: float) -> None:
        if step == stop_at:
            stop.signum = 15

    return Trainer(cfg, model, tasks, run_dir=run_dir, progress=progress, stop=stop)  # type: ignore[arg-type]


def test_user_modules_from_yaml_resume_exactly(tmp_path: Path, user_module: None) -> None:
    cfg = yaml_config()
    (tmp_path / "full").mkdir()
    full = _trainer(cfg, tmp_path / "full")
    full_result = full.fit()
    (tmp_path / "cut").mkdir()
    with pytest.raises(RunStopped):
        _trainer(cfg, tmp_path / "cut", stop_at=23).fit()
    state = ckpt.load_checkpoint(tmp_path / "cut" / ckpt.CHECKPOINT_NAME)
    torch.manual_seed(999)
    resumed = _trainer(cfg, tmp_path / "cut")
    resumed.load_state_dict(state)
    result = resumed.fit()
    assert result.best_step == full_result.best_step and result.best_score == full_result.best_score
    assert all(torch.equal(a, b) for a, b in zip(resumed.model.parameters(), full.model.parameters()))


def test_user_modules_from_yaml_write_a_run_directory_and_report(tmp_path: Path, user_module: None) -> None:
    out = tmp_path / "run"
    summary = run(yaml_config(steps=20), out)
    assert summary is not None and summary["scheme"] == "soft_ordering"
    assert len(summary["structure"]["scales"]) == 3  # [T][J][D] soft order of the user's blocks
    saved = (out / "config.yaml").read_text()
    assert "_component_: usernet_resume_i13.MLPBlock" in saved and "depth: 3" in saved
    html, md = write_report([out], out)
    assert md.is_file() and "soft_ordering" in md.read_text()
    assert json.loads((out / "summary.json").read_text())["n_parameters"] == summary["n_parameters"]


def test_budget_counts_shared_encoders_and_per_task_heads_of_any_size() -> None:
    """A shared user encoder and per-task heads of different sizes: the tree's count is exact."""
    from torch import nn

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 6, generator=gen)

    def task(name: str, n_out: int) -> TaskData:
        y = torch.randint(0, n_out, (40,), generator=gen)
        return TaskData(name, "multiclass", n_out, x[:20], y[:20], x[20:30], y[20:30], x[30:], y[30:])

    tasks = [task("a", 2), task("b", 3), task("c", 5)]
    blocks = [nn.Sequential(nn.Linear(8, 8), nn.ReLU()) for _ in range(3)]

    def build_with(scheme: str, **options: Any) -> MultiTaskModel:
        torch.manual_seed(0)
        return assemble_model(scheme, n_outputs=[2, 3, 5], input_shape=[6], blocks=blocks, encoders=nn.Linear(6, 8),
                              heads=[nn.Linear(8, 2), nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 3)),
                                     nn.Linear(8, 5)], options=options)

    single = build_with("single_task")
    affinity = compute_affinity(single, tasks, k=10)
    assert affinity["head_params"] == {"a": 18, "b": 36 + 15, "c": 45} and affinity["shared_params"] == 56
    for partitions in ([[["a", "b", "c"]]] * 3, [[["a", "b", "c"]], [["a", "b"], ["c"]], [["a"], ["b"], ["c"]]],
                       [[["a"], ["b"], ["c"]]] * 3):
        tree = {"tasks": ["a", "b", "c"], "partitions": partitions}
        branched = build_with("branched", tree=tree)
        groups = sum(len(p) for p in partitions)
        assert sum(p.numel() for p in branched.parameters()) == 72 * groups + 18 + 51 + 45 + 56
    found = search(affinity, budget=10_000, beam=None)
    assert sum(p.numel() for p in build_with("branched", tree=found).parameters()) == found["params"] <= 10_000
    tight = search(affinity, budget=72 * 4 + 18 + 51 + 45 + 56, beam=None)  # room for one extra block copy
    assert sum(len(p) for p in tight["partitions"]) <= 4 and tight["params"] <= 72 * 4 + 170


@pytest.mark.slow
def test_user_modules_from_yaml_under_ddp_equal_a_double_batch(tmp_path: Path, user_module: None,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Two DDP ranks on the user's blocks train exactly what one process does on twice the batch."""
    import os
    import subprocess
    import sys

    import yaml

    src = Path(__file__).resolve().parents[2] / "src"
    block = {"_component_": "usernet_resume_i13.MLPBlock", "width": 16, "dropout": 0.0}  # ranks draw own masks

    def config(batch: int) -> dict[str, Any]:
        cfg = yaml_config(steps=30, batch_size=batch, eval_every=15, checkpoint_every=15)
        cfg["model"]["core"]["blocks"] = [block, block]
        cfg["scheme"] = "permuted"
        return cfg

    (tmp_path / "cwd").mkdir()
    (tmp_path / "cwd" / "config.yaml").write_text(yaml.safe_dump(config(8)))
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(src), str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           "-m", "sharewise", "run", "config.yaml", "--out", "out", "--no-plots", "--no-report"],
                          cwd=tmp_path / "cwd", env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ddp = ckpt.load_checkpoint(tmp_path / "cwd" / "out" / "checkpoint.pt")
    run(config(16), tmp_path / "single")
    single = ckpt.load_checkpoint(tmp_path / "single" / "checkpoint.pt")
    assert ddp["step"] == single["step"] == 30
    for name, value in single["model"].items():
        torch.testing.assert_close(ddp["model"][name], value, atol=1e-5, rtol=0, msg=name)
