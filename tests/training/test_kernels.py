"""sharewise's optimisers without ``torch.optim`` (training/kernels.py, training/plain_optim.py):
every update bit-identical to torch's Adam(fused=True) / SGD(momentum=0.9) / RMSprop, torch's
state_dict format both ways (checkpoints written while sharewise used torch.optim still load),
and a plain run that never imports ``torch._dynamo`` (the reason for all of this: issue 15)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sharewise.training.plain_optim import PlainOptimizer
from sharewise.training.task_optim import TaskSlicedOptimizer

KINDS = ["adam", "sgd", "rmsprop"]


def _torch(kind: str, groups: list[dict]) -> torch.optim.Optimizer:
    if kind == "adam":
        return torch.optim.Adam(groups, lr=0.01, fused=True)
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=0.01, momentum=0.9)
    return torch.optim.RMSprop(groups, lr=0.01)


def _params(seed: int) -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(*shape, generator=gen)) for shape in ((5, 7), (7,), (3, 2, 2), (4,))]


def _groups(params: list[torch.nn.Parameter]) -> list[dict]:
    # Two groups with their own learning rate and weight decay, as build_optimizer makes them.
    return [{"name": "weights", "params": params[:3], "lr": 0.02, "weight_decay": 0.1},
            {"name": "architecture", "params": params[3:], "lr": 0.05, "weight_decay": 0.0}]


def _steps(opts: list, params: list[list[torch.nn.Parameter]], n: int, seed: int, skip: int | None = None) -> None:
    """``n`` updates of every optimiser with the same gradients; parameter ``skip`` has no
    gradient in odd steps (it must then be left alone, state included)."""
    gen = torch.Generator().manual_seed(seed)
    for step in range(n):
        grads = [torch.randn(p.shape, generator=gen) for p in params[0]]
        for opt, ps in zip(opts, params):
            opt.zero_grad(set_to_none=True)
            for i, (p, g) in enumerate(zip(ps, grads)):
                p.grad = None if (i == skip and step % 2 == 1) else g.clone()
            opt.step()


@pytest.mark.parametrize("kind", KINDS)
def test_updates_are_bit_identical_to_torch_optim(kind: str) -> None:
    ours, theirs = _params(0), _params(0)
    a, b = PlainOptimizer(_groups(ours), kind, 0.01), _torch(kind, _groups(theirs))
    _steps([a, b], [ours, theirs], 6, seed=1, skip=1)
    for p, q in zip(ours, theirs):
        assert torch.equal(p, q)
        assert set(a.state[p]) <= set(b.state[q]) | {"step"}
        for key, value in b.state[q].items():
            assert torch.equal(a.state[p][key].cpu(), value.cpu()), key
    # The skipped parameter: torch and sharewise both count only its 3 updates with a gradient.
    if kind != "sgd":
        assert float(a.state[ours[1]]["step"]) == 3.0 and float(a.state[ours[0]]["step"]) == 6.0


@pytest.mark.parametrize("kind", KINDS)
def test_a_torch_optim_state_loads_and_continues_identically(kind: str) -> None:
    """Checkpoints written while the shared parameters were under torch.optim (format 2)."""
    ref, ours = _params(0), _params(0)
    b = _torch(kind, _groups(ref))
    _steps([b], [ref], 3, seed=2)
    for p, q in zip(ours, ref):
        p.data.copy_(q.data)
    a = PlainOptimizer(_groups(ours), kind, 0.01)
    a.load_state_dict(copy.deepcopy(b.state_dict()))
    assert [g["lr"] for g in a.param_groups] == [0.02, 0.05]
    _steps([a, b], [ours, ref], 4, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(ours, ref))
    # ... and the other way: torch.optim takes sharewise's state (the same format).
    c_params = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    c = _torch(kind, _groups(c_params))
    c.load_state_dict(copy.deepcopy(a.state_dict()))
    _steps([a, c], [ours, c_params], 2, seed=4)
    assert all(torch.equal(p, q) for p, q in zip(ours, c_params))


def test_a_state_of_other_hyperparameters_or_groups_is_refused() -> None:
    params = _params(0)
    a = PlainOptimizer(_groups(params), "sgd", 0.01)
    other = torch.optim.SGD(_groups(_params(0)), lr=0.01, momentum=0.5)
    with pytest.raises(ValueError, match=r"written with momentum=0\.5, but sharewise's sgd uses momentum=0\.9"):
        a.load_state_dict(other.state_dict())
    fewer = torch.optim.SGD(_groups(_params(0))[:1], lr=0.01, momentum=0.9)
    with pytest.raises(ValueError, match=r"groups of \[3\] parameters, but this optimizer's groups have \[3, 1\]"):
        a.load_state_dict(fewer.state_dict())
    with pytest.raises(ValueError, match="more than one parameter group"):
        a.add_param_group({"params": [params[0]]})


def test_the_task_sliced_optimizer_leaves_parameters_without_gradient_alone() -> None:
    """A shared parameter no task in the update uses gets no gradient: neither it nor its state moves."""
    shared, unused, stacked = (torch.nn.Parameter(torch.randn(4)), torch.nn.Parameter(torch.randn(4)),
                               torch.nn.Parameter(torch.randn(3, 4)))
    opt = TaskSlicedOptimizer([{"name": "weights", "params": [shared, unused, stacked], "lr": 0.01,
                                "weight_decay": 0.1}], "adam", 3, 0.01, {id(stacked)})
    shared.grad, unused.grad, stacked.grad = torch.randn(4), torch.randn(4), torch.randn(3, 4)
    opt.step([0])
    assert opt.shared is not None
    before = unused.detach().clone(), {k: v.clone() for k, v in opt.shared.state[unused].items()}
    opt.zero_grad()
    shared.grad, stacked.grad = torch.randn(4), torch.randn(3, 4)
    opt.step([1])
    assert torch.equal(unused, before[0])
    assert all(torch.equal(opt.shared.state[unused][k], v) for k, v in before[1].items())
    assert float(opt.shared.state[shared]["step"]) == 2.0


def test_a_short_run_does_not_import_torch_dynamo(tmp_path: Path) -> None:
    """torch.optim imports torch._dynamo (~1.5 s, as long again as torch); a run must not."""
    code = ("import sys\nfrom sharewise.cli.main import main\n"
            f"rc = main(['run', 'configs/demo/demo.yaml', '--steps', '2', '--out', {str(tmp_path / 'run')!r}])\n"
            "heavy = sorted(m for m in sys.modules if m.startswith(('torch._dynamo', 'torch._inductor', 'scipy', "
            "'sklearn', 'matplotlib', 'sympy')))\n"
            "print(rc, heavy)\n")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "0 []", out.stdout
