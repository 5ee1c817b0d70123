"""Data-parallel training (issue 7) on CPU with 2 gloo ranks launched by torchrun.

2 ranks x batch b must give, step for step, the model one process gets with batch 2b (every rank
takes its half of the same global draw; DDP averages the gradients): checked after a SIGTERM stop
and a resume under torchrun for soft ordering, and for Gumbel-Matrix, whose allocation samples are
random (p = 0.5) but identical on both ranks and in the single process, because the noise
generator is seeded from the run seed and drawn once per forward pass on every rank. Dropout is 0
in these comparisons: its masks differ per rank by design. Every checkpoint also checks, bitwise,
that the ranks hold the same parameters and generator states (``check_in_sync``), and a drifted
rank is caught. Only rank 0 writes.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from sharewise.data.sampler import StackedTaskSampler
from sharewise.data.tasksets import build_tasks
from sharewise.runner import run
from sharewise.training.distributed import SINGLE
from sharewise.training.checkpoint import load_checkpoint
from sharewise.training.io import read_jsonl

SRC = Path(__file__).resolve().parents[2] / "src"
slow = pytest.mark.slow  # each torchrun launch starts two interpreters (~10 s on 2 busy cores)


def _config(scheme: str, steps: int, batch: int, mode: str = "joint", **options: Any) -> dict[str, Any]:
    return {
        "name": "ddp",
        "scheme": scheme,
        "scheme_options": options,
        "tasks": {"builder": "demo", "options": {"names": ["iris", "wine", "friedman1"]}},
        "model": {"core": {"width": 16, "depth": 3, "dropout": 0.0}},
        "train": {"steps": steps, "batch_size": batch, "eval_every": 25, "checkpoint_every": 25, "threads": 1,
                  "mode": mode},
    }


def _torchrun(cwd: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                             "-m", "sharewise", "run", *args, "--no-plots", "--no-report"],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen[str], timeout: float = 180.0) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def _single(tmp_path: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    out = tmp_path / "single"
    run(cfg, out)  # as the torchrun runs (--no-plots)
    return load_checkpoint(out / "checkpoint.pt")


def _assert_same_training(ddp: dict[str, Any], single: dict[str, Any]) -> None:
    assert ddp["step"] == single["step"]
    for name, value in single["model"].items():
        torch.testing.assert_close(ddp["model"][name], value, atol=1e-5, rtol=0, msg=name)
    # the sampler drew the same global batches; scheme generators made the same number of draws
    assert torch.equal(ddp["sampler"]["perms"], single["sampler"]["perms"])
    assert torch.equal(ddp["sampler"]["pos"], single["sampler"]["pos"])
    assert ddp["module_states"].keys() == single["module_states"].keys()
    for key, state in single["module_states"].items():
        assert torch.equal(ddp["module_states"][key], state), key
    losses = [(a["train_loss"], b["train_loss"]) for a, b in zip(ddp["history"], single["history"])]
    assert losses and all(abs(a - b) < 1e-4 for a, b in losses)


@pytest.mark.parametrize("names", [["iris", "wine", "friedman1"], None])
def test_sampler_shards_split_the_same_global_draw(names: list[str] | None) -> None:
    if names is None:  # shared inputs: every task labels the same rows
        base = build_tasks("demo", data_dir=None, seed=0, options={"names": ["iris"]})
        tasks = [base[0], dataclasses.replace(base[0], name="iris2")]
    else:
        tasks = build_tasks("demo", data_dir=None, seed=0, options={"names": names})
    whole = StackedTaskSampler(tasks, 12, torch.Generator().manual_seed(3))
    shards = [StackedTaskSampler(tasks, 12, torch.Generator().manual_seed(3), shard=(r, 3)) for r in range(3)]
    assert whole.shared_inputs == (names is None)
    for _ in range(40):  # crosses epoch ends (iris: 120 training rows)
        x, y = whole.next()  # [T, 12, *in]
        parts = [s.next() for s in shards]  # each [T, 4, *in]
        torch.testing.assert_close(torch.cat([p[0] for p in parts], 1), x, rtol=0, atol=0)
        torch.testing.assert_close(torch.cat([p[1] for p in parts], 1), y, rtol=0, atol=0)
    for s in shards:  # identical state on every rank: one copy resumes them all
        assert torch.equal(s.state_dict()["perms"], whole.state_dict()["perms"])
        assert torch.equal(s.state_dict()["pos"], whole.state_dict()["pos"])


def test_sampler_shard_must_divide_the_global_batch() -> None:
    tasks = build_tasks("demo", data_dir=None, seed=0, options={"names": ["iris"]})
    with pytest.raises(ValueError, match=r"batch_size=10, but got shard=\(0, 3\)"):
        StackedTaskSampler(tasks, 10, torch.Generator(), shard=(0, 3))


def test_single_process_context_runs_no_collective() -> None:
    assert not SINGLE.enabled and SINGLE.is_main
    assert SINGLE.agree(1.5, None) == (1.5, None)
    assert SINGLE.gather_objects({"a": 1}) is None
    assert SINGLE.on_main(lambda: 7) == 7


def _written(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@slow
def test_soft_ordering_two_ranks_equal_double_batch_through_stop_and_resume(tmp_path: Path) -> None:
    steps = 300
    cfg_path = tmp_path / "cwd" / "config.yaml"
    cfg_path.parent.mkdir()
    cfg_path.write_text(yaml.safe_dump(_config("soft_ordering", steps, batch=8)))
    cwd, out = cfg_path.parent, cfg_path.parent / "out"
    proc = _torchrun(cwd, "config.yaml", "--out", "out")
    deadline = time.monotonic() + 120
    while not ((out / "metrics.jsonl").exists() and read_jsonl(out / "metrics.jsonl")):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the DDP run ended or hung before its first evaluation: {proc.communicate()[0]}")
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)  # torchrun forwards it to both ranks; they agree on the step
    status, log = _finish(proc)
    stopped = load_checkpoint(out / "checkpoint.pt")
    assert status != 0 and 25 <= stopped["step"] < steps, log
    assert len(stopped["rng_ranks"]) == 2  # each rank's own global RNG (dropout) stream
    assert not (out / "summary.json").exists()

    status, log = _finish(_torchrun(cwd, "--resume", "out"))
    assert status == 0, log
    single = _single(tmp_path, _config("soft_ordering", steps, batch=16))
    _assert_same_training(load_checkpoint(out / "checkpoint.pt"), single)
    # rank 0 alone wrote, and exactly what a single process writes; nothing else in the cwd
    assert _written(cwd) == {"config.yaml", "out"} | {f"out/{p}" for p in _written(tmp_path / "single")}
    assert [r["step"] for r in read_jsonl(out / "metrics.jsonl")] == list(range(25, steps + 1, 25))
    assert yaml.safe_load((out / "run.json").read_text())["resumes"][0]["world_size"] == 2


@slow
def test_gumbel_matrix_two_ranks_equal_double_batch(tmp_path: Path) -> None:
    # The paper's alternating mode: per-task optimiser state (training/task_optim.py) under DDP.
    steps = 100
    (tmp_path / "cwd").mkdir()
    (tmp_path / "cwd" / "config.yaml").write_text(yaml.safe_dump(_config("gumbel_matrix", steps, batch=8, mode="alternating")))
    status, log = _finish(_torchrun(tmp_path / "cwd", "config.yaml", "--out", "out"))
    assert status == 0, log
    ddp = load_checkpoint(tmp_path / "cwd" / "out" / "checkpoint.pt")
    single = _single(tmp_path, _config("gumbel_matrix", steps, batch=16, mode="alternating"))
    _assert_same_training(ddp, single)  # includes the noise generator ("scheme:generator")
    assert "scheme:generator" in ddp["module_states"]
    # the samples were random, not a degenerate all-on allocation
    sampled = [r["scheme"]["sampled_active_fraction"] for r in read_jsonl(tmp_path / "cwd" / "out" / "metrics.jsonl")]
    assert all(0.0 < s < 1.0 for s in sampled), sampled


_DRIFT_WORKER = """
import sys, torch, torch.distributed as dist
from sharewise.errors import TrainingError
from sharewise.runner import prepare
from sharewise.training.distributed import DistContext, check_in_sync
rank = int(sys.argv[1])
dist.init_process_group("gloo", init_method="file://" + sys.argv[2], rank=rank, world_size=2)
cfg, tasks, model = prepare(__CFG__, None)
ctx = DistContext(rank=rank, world=2)
check_in_sync(model, ctx, 0)  # same seed, same model: passes
if rank == 1:
    with torch.no_grad():
        model.scheme.logits[0, 0, 0] += 1e-7
try:
    check_in_sync(model, ctx, 1)
except TrainingError as err:
    print("CAUGHT", err)
dist.destroy_process_group()
"""


@slow
def test_a_drifted_rank_is_caught(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(_DRIFT_WORKER.replace("__CFG__", repr(_config("soft_ordering", 1, batch=4))))
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    procs = [subprocess.Popen([sys.executable, str(script), str(r), str(tmp_path / "store")], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for r in range(2)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    for out in outs:  # both ranks raise, naming the parameter and the rank
        assert "CAUGHT at step 1 the ranks disagree on scheme.logits (ranks [1]" in out, out
