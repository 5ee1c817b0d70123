"""New tasks over a finished run's frozen shared blocks (``sharewise adapt``).

The shared blocks of the adapted run are bit-identical to the parent's after training; only the
new tasks' encoders, heads and structure parameters are in the optimiser; the adapted run is an
ordinary run directory (rebuilt from its config.yaml with the parent's blocks, exported); bad
parents and inputs of another kind give clear errors.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from sharewise.adapt import check_input_kind
from sharewise.cli.main import main
from sharewise.config import read_yaml
from sharewise.errors import AdaptError
from sharewise.sharing.branched import attach_rule

PARENT_TASKS, NEW_TASKS = ["iris", "wine", "friedman1"], ["breast_cancer", "digits"]
TINY = ["--steps", "20", "train.eval_every=10", "train.batch_size=16"]
TREE = [[[0, 1, 2]], [[0, 1], [2]]]


def _config(path: Path, names: list[str], **extra: object) -> Path:
    cfg = {"name": "t", "tasks": {"builder": "demo", "options": {"names": names}},
           "model": {"core": {"width": 8, "depth": 2}}, **extra}
    path.write_text(yaml.safe_dump(cfg))
    return path


def _parent(tmp_path: Path, scheme: str, **options: object) -> Path:
    extra = {"scheme_options": options} if options else {}
    cfg = _config(tmp_path / f"parent_{scheme}.yaml", PARENT_TASKS, **extra)
    out = tmp_path / f"parent_{scheme}"
    assert main(["run", str(cfg), "--scheme", scheme, "--out", str(out), *TINY]) == 0
    return out


def _new_config(tmp_path: Path) -> Path:
    return _config(tmp_path / "new.yaml", NEW_TASKS, train={"lr": 0.01})


def _shared_state(run: Path, prefix: str) -> dict[str, torch.Tensor]:
    state = torch.load(run / "best.pt", weights_only=True)["model"]
    return {k: v for k, v in state.items() if k.startswith(prefix)}


@pytest.mark.parametrize("scheme,shared,own", [
    ("soft_ordering", "scheme.bank.", "scheme.logits"),
    ("gumbel_matrix", "scheme.network.", "scheme.logits."),
    ("shared_encoder", "scheme.bank.", None),
])
def test_adapted_run_keeps_the_shared_blocks_bit_identical(tmp_path: Path, scheme: str, shared: str,
                                                           own: str | None) -> None:
    parent = _parent(tmp_path, scheme)
    out = tmp_path / "adapted"
    assert main(["adapt", str(parent), str(_new_config(tmp_path)), "--out", str(out), "--steps", "20",
                 "train.eval_every=10", "train.batch_size=16"]) == 0
    before, after = _shared_state(parent, shared), _shared_state(out, shared)
    assert before and before.keys() == after.keys()
    for k in before:
        assert torch.equal(before[k], after[k]), k
    state = torch.load(out / "best.pt", weights_only=True)["model"]
    assert own is None or any(k.startswith(own) for k in state)  # the new tasks' own structure parameters
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["tasks"]) == set(NEW_TASKS)
    cfg = read_yaml(out / "config.yaml")
    assert cfg["adapt"]["run"] == str(parent.resolve()) and cfg["scheme"] == scheme
    assert main(["validate", str(out / "config.yaml")]) == 0
    assert main(["export", str(out), "--task", "digits"]) == 0  # an ordinary run directory


def test_only_new_task_parameters_are_optimised(tmp_path: Path) -> None:
    from sharewise.adapt import adapted_config
    from sharewise.runner import prepare
    from sharewise.training.optim import build_optimizer

    parent = _parent(tmp_path, "soft_ordering")
    new = yaml.safe_load(_new_config(tmp_path).read_text())
    cfg_dict = adapted_config(parent, new, NEW_TASKS)
    cfg, _, model = prepare(cfg_dict, None)
    opt, groups = build_optimizer(model, cfg.train)
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    names = {id(p): n for n, p in model.named_parameters()}
    optimised = sorted(names[i] for i in in_opt)
    assert optimised and all(n.startswith(("encoders.", "heads.")) or n == "scheme.logits" for n in optimised)
    assert not any(n.startswith("scheme.bank") for n in optimised)
    parent_bank = _shared_state(parent, "scheme.bank.")
    for k, v in parent_bank.items():  # loaded from the parent, frozen
        p = dict(model.named_parameters())[k]
        assert torch.equal(p.detach(), v) and not p.requires_grad


def test_branched_parent_attaches_new_tasks_by_the_rule_and_keeps_blocks(tmp_path: Path) -> None:
    parent = _parent(tmp_path, "branched", tree=TREE)
    structure = json.loads((parent / "summary.json").read_text())["structure"]
    assert attach_rule(structure) == "iris"  # root -> the group {iris, wine} (2 tasks) -> its first task
    out = tmp_path / "adapted"
    assert main(["adapt", str(parent), str(_new_config(tmp_path)), "--out", str(out), "--attach", ",friedman1",
                 *TINY]) == 0
    cfg = read_yaml(out / "config.yaml")
    assert cfg["scheme_options"]["tree"]["partitions"] == [[[0, 1]], [[0], [1]]]
    p, a = _shared_state(parent, "scheme.bank."), _shared_state(out, "scheme.bank.")
    # depth 0: one shared block; depth 1: breast_cancer follows iris's block 1, digits friedman1's block 2
    torch.testing.assert_close(a["scheme.bank.weight"][:, 0], p["scheme.bank.weight"][:, 0], rtol=0, atol=0)
    torch.testing.assert_close(a["scheme.bank.weight"][:, 1], p["scheme.bank.weight"][:, 1], rtol=0, atol=0)
    torch.testing.assert_close(a["scheme.bank.weight"][:, 2], p["scheme.bank.weight"][:, 2], rtol=0, atol=0)


def test_schemes_without_shared_blocks_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parent = _parent(tmp_path, "single_task")
    assert main(["adapt", str(parent), str(_new_config(tmp_path)), "--out", str(tmp_path / "a"), *TINY]) == 2
    assert "single_task shares nothing" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


def test_config_that_changes_the_architecture_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parent = _parent(tmp_path, "parallel")
    cfg = _config(tmp_path / "c.yaml", NEW_TASKS, model={"core": {"width": 16, "depth": 2}})
    assert main(["adapt", str(parent), str(cfg), "--out", str(tmp_path / "a"), *TINY]) == 2
    assert "sets ['model'] to other values than the parent" in capsys.readouterr().err


def test_input_kind_mismatch_is_named() -> None:
    check_input_kind([(4,), (13,)], {"a": (30,)}, "dense")  # any width through dense encoders
    with pytest.raises(AdaptError, match=r"imgs: \[1, 28, 28\]"):
        check_input_kind([(4,), (13,)], {"imgs": (1, 28, 28)}, "dense")
    with pytest.raises(AdaptError, match=r"b: \[1, 12, 12\].*'channel_pad'"):
        check_input_kind([(1, 28, 28)], {"a": (1, 28, 28), "b": (1, 12, 12)}, "channel_pad")


def test_not_a_finished_parent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["adapt", str(tmp_path / "nope"), str(_new_config(tmp_path)), "--out", str(tmp_path / "a")]) == 2
    assert "is not a finished run directory" in capsys.readouterr().err



@pytest.mark.slow
def test_a_stopped_adapted_run_resumes_like_any_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    parent = _parent(tmp_path, "soft_ordering")
    new = _config(tmp_path / "long.yaml", NEW_TASKS,
                  train={"steps": 1500, "eval_every": 25, "checkpoint_every": 0, "batch_size": 16})
    out = tmp_path / "adapted"
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-m", "sharewise", "adapt", str(parent), str(new), "--out", str(out)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "metrics.jsonl").exists() or not (out / "metrics.jsonl").read_text().strip():
        assert proc.poll() is None and time.monotonic() < deadline, "the adapted run ended or hung"
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, f"expected the run to stop on SIGTERM (143), got {proc.returncode}: {err}"
    assert not (out / "summary.json").exists()
    assert main(["run", "--resume", str(out)]) == 0
    capsys.readouterr()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 1500 and len(summary["resumed_at_steps"]) == 1
    before, after = _shared_state(parent, "scheme.bank."), _shared_state(out, "scheme.bank.")
    assert all(torch.equal(before[k], after[k]) for k in before)
