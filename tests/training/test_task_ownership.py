"""Issue 10: in an update that involves only some tasks, the parameters and optimiser state owned
by the other tasks do not change, in every scheme.

The owners below are written from each scheme's definition (its docstring and parameter layout),
not read from the library's declarations, so a scheme that forgets to declare what its tasks own
fails here. ``OWNED`` maps a parameter name to ``(dim, owners)``: index i along ``dim`` belongs
to the tasks ``owners[i]``; a parameter not listed is shared (every task may move it). The test
also checks the table against the forward pass: a task's gradient is exactly zero on every index
it does not own.

Gumbel-Matrix components are not listed: they are shared by design (the allocation is sampled
every step, see ``sharewise.sharing.gumbel_matrix``), so only its logits, encoders and heads are
task-owned there.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from sharewise.runner import prepare
from sharewise.sharing import available_schemes
from sharewise.training.trainer import Trainer

T, D, WIDTH, COMPONENTS = 3, 3, 8, 4
TREE = [[[0, 1, 2]], [[0], [1, 2]], [[0], [1], [2]]]  # a branch of tasks {1, 2} at depth 1
OPTIONS: dict[str, dict[str, Any]] = {"branched": {"tree": TREE}}
Owners = tuple[int, list[frozenset[int]]]


def _per_task(n: int, per: int = 1) -> list[frozenset[int]]:
    """Index i belongs to task i // per (stacked rows, column layers, per-task channels)."""
    return [frozenset({i // per}) for i in range(n)]


def _layers(owners: list[frozenset[int]]) -> dict[str, Owners]:
    """A DenseLayerBank's layer j (weight [in, L, out] along dim 1, bias [L, out]) owned by owners[j]."""
    return {"weight": (1, owners), "bias": (0, owners)}


def owned(scheme: str) -> dict[str, Owners]:
    table: dict[str, Owners] = {f"{part}.{p}": (0, _per_task(T)) for part in ("encoders", "heads.heads")
                                for p in ("weight", "bias")}
    bank: dict[str, Owners] = {}
    if scheme == "single_task":
        bank = _layers(_per_task(T * D, D))  # task t's column: layers t*D .. t*D+D-1
    elif scheme == "branched":
        bank = _layers([frozenset(g) for partition in TREE for g in partition])
    elif scheme == "cross_stitch":  # the columns mix, so every task uses every column; the last
        table[f"scheme.alpha.{D - 1}"] = (0, _per_task(T))  # unit's row t feeds task t alone
    elif scheme == "nddr":  # likewise; the last NDDR layer's rows / channels of task t feed task t alone
        for name in (f"scheme.weight.{D - 1}", f"scheme.norm.{D - 1}.weight", f"scheme.norm.{D - 1}.bias"):
            table[name] = (0, _per_task(T * WIDTH, WIDTH))
    elif scheme == "no_sharing":  # component c belongs to task c * T // C
        comps = [frozenset({c * T // COMPONENTS}) for c in range(COMPONENTS)]
        for layer in range(D):
            table.update({f"scheme.network.layers.{layer}.bank.{k}": v for k, v in _layers(comps).items()})
    elif scheme == "soft_ordering":
        table["scheme.logits"] = (0, _per_task(T))
    elif scheme == "gumbel_matrix":
        table.update({f"scheme.logits.{layer}": (0, _per_task(T)) for layer in range(D)})
    table.update({f"scheme.bank.{k}": v for k, v in bank.items()})
    return table


def owned_buffers(scheme: str) -> dict[str, Owners]:
    """Buffers that belong to some tasks, in ``owned``'s format: the running statistics of the last
    NDDR layer's channels of task t are task t's, like its affine parameters."""
    if scheme != "nddr":
        return {}
    return {f"scheme.norm.{D - 1}.{name}": (0, _per_task(T * WIDTH, WIDTH)) for name in ("running_mean", "running_var")}


def _config(scheme: str, **train: Any) -> dict[str, Any]:
    return {
        "name": "ownership", "scheme": scheme, "scheme_options": OPTIONS.get(scheme, {}),
        "tasks": {"builder": "demo", "options": {"names": ["iris", "wine", "friedman1"]}},
        "model": {"core": {"width": WIDTH, "depth": D, "dropout": 0.0}},
        "train": {"steps": 5, "batch_size": 8, "mode": "alternating", "threads": 1, "optimizer": "adam",
                  "weight_decay": 0.05, **train},
    }


def _state(trainer: Trainer, p: torch.Tensor) -> dict[str, torch.Tensor]:
    for opt in (trainer.optimizer.shared, trainer.optimizer.per_task):
        if opt is not None and p in opt.state:
            return {k: v.clone() for k, v in opt.state[p].items() if isinstance(v, torch.Tensor)}
    return {}


def _others(p: torch.Tensor, dim: int, owners: list[frozenset[int]], t: int) -> torch.Tensor:
    """Bool mask shaped like ``p``: the elements task ``t`` does not own."""
    keep = torch.tensor([t not in o for o in owners])
    shape = [1] * p.dim()
    shape[dim] = len(owners)
    return keep.view(shape).expand(p.shape)


def _assert_unchanged_where(name: str, t: int, mask: torch.Tensor, before: torch.Tensor, after: torch.Tensor) -> None:
    changed = (before != after) & mask
    assert not bool(changed.any()), \
        f"{name}: {int(changed.sum())} element(s) owned by other tasks moved in task {t}'s update"


@pytest.mark.parametrize("scheme", available_schemes())
def test_an_update_of_one_task_leaves_what_other_tasks_own_bit_identical(scheme: str) -> None:
    torch.manual_seed(0)
    cfg, tasks, model = prepare(_config(scheme), None)
    trainer = Trainer(cfg, model, tasks)
    params = dict(model.named_parameters())
    table = owned(scheme)
    assert set(table) <= set(params), sorted(set(table) - set(params))
    buffers, buffer_table = dict(model.named_buffers()), owned_buffers(scheme)
    assert set(buffer_table) <= set(buffers), sorted(set(buffer_table) - set(buffers))
    for step in range(1, 4):  # warm up: every task has first and second moments
        trainer.train_step(step)
    x, y = trainer.sampler.next()
    for t in range(T):
        before = {n: p.detach().clone() for n, p in params.items()}
        states = {n: _state(trainer, p) for n, p in params.items()}
        buffers_before = {n: buffers[n].clone() for n in buffer_table}
        trainer._update(x[t:t + 1], y[t:t + 1], [t], step=4)
        for n, (dim, owners) in buffer_table.items():  # per-task state that is not a parameter
            others = _others(buffers[n], dim, owners, t)
            _assert_unchanged_where(n, t, others, buffers_before[n], buffers[n])
            own_entries_moved = bool(((buffers[n] != buffers_before[n]) & ~others).any())
            assert own_entries_moved, f"{n}: task {t}'s own entries did not move"
        grads = {n: p.grad for n, p in params.items()}
        own_moved, shared_moved = False, False
        for n, p in params.items():
            after_state = _state(trainer, p)
            if n not in table:
                shared_moved |= not torch.equal(p.detach(), before[n])
                continue
            dim, owners = table[n]
            assert p.shape[dim] == len(owners), (n, list(p.shape), dim)
            others = _others(p, dim, owners, t)
            if grads[n] is not None:  # the table agrees with the forward pass
                assert not bool((grads[n] != 0)[others].any()), f"{n}: task {t} has a gradient where it owns nothing"
            _assert_unchanged_where(n, t, others, before[n], p.detach())
            for key, value in states[n].items():
                new = after_state[key]
                if value.shape == p.shape:
                    _assert_unchanged_where(f"{n} state {key}", t, others, value, new)
                elif bool(others.any()):  # a step count: one per index along dim, or one for the tensor
                    assert value.numel() == len(owners) or bool(others.all()), \
                        f"{n}: one step count {key!r} for blocks of different tasks"
                    idx = torch.tensor([t not in o for o in owners]) if value.numel() == len(owners) else slice(None)
                    assert torch.equal(value.reshape(-1)[idx], new.reshape(-1)[idx]), f"{n}: {key} of other tasks moved"
            own_moved |= bool(((p.detach() != before[n]) & ~others).any())
        assert own_moved, f"task {t}'s own parameters did not move"
        if any(n not in table for n in params):
            assert shared_moved, f"no shared parameter moved in task {t}'s update"


def test_uncertainty_log_variances_of_other_tasks_stay_put() -> None:
    torch.manual_seed(0)
    cfg, tasks, model = prepare(_config("parallel", weighting="uncertainty"), None)
    trainer = Trainer(cfg, model, tasks)
    assert trainer.balancer is not None
    s = trainer.balancer.weighting.log_variance
    for step in range(1, 4):
        trainer.train_step(step)
    x, y = trainer.sampler.next()
    for t in range(T):
        before, state = s.detach().clone(), _state(trainer, s)
        trainer._update(x[t:t + 1], y[t:t + 1], [t], step=4)
        others = torch.arange(T) != t
        assert torch.equal(s.detach()[others], before[others]) and s.detach()[t] != before[t]
        after = _state(trainer, s)
        for key, value in state.items():
            if value.shape == s.shape:
                assert torch.equal(after[key][others], value[others]), key
            else:
                assert value.numel() == T, f"one step count {key!r} for every task's log-variance"


class _OneAdam:
    """One fused ``torch.optim.Adam`` over every parameter, behind the trainer's ``step(tasks)``."""

    def __init__(self, trainer: Trainer) -> None:
        self.opt = torch.optim.Adam([{k: v for k, v in g.items() if k != "name"}
                                     for g in trainer.optimizer.param_groups], fused=True)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.opt.zero_grad(set_to_none=set_to_none)

    def step(self, tasks: Any = None) -> None:
        self.opt.step()


@pytest.mark.parametrize("scheme", available_schemes())
def test_joint_updates_equal_one_adam_over_everything(scheme: str) -> None:
    """When every task is in the update, ownership changes nothing: bit for bit one Adam."""
    models = []
    for plain in (False, True):
        torch.manual_seed(0)
        cfg, tasks, model = prepare(_config(scheme, mode="joint"), None)
        trainer = Trainer(cfg, model, tasks)
        if plain:
            trainer.optimizer = _OneAdam(trainer)  # type: ignore[assignment]
        for step in range(1, 4):
            trainer.train_step(step)
        models.append(model)
    for (name, a), b in zip(models[0].named_parameters(), models[1].parameters()):
        assert torch.equal(a, b), name


def _linear(n_in: int, n_out: int) -> dict[str, Any]:
    return {"_component_": "torch.nn.Linear", "in_features": n_in, "out_features": n_out}


@pytest.mark.parametrize(("scheme", "train"), [
    ("parallel", {}), ("parallel", {"optimizer": "sgd"}), ("parallel", {"optimizer": "rmsprop"}),
    ("parallel", {"weighting": "gradnorm"}), ("nddr", {})], ids=["adam", "sgd", "rmsprop", "gradnorm", "nddr"])
def test_user_per_task_modules_of_other_tasks_stay_bit_identical(scheme: str, train: dict[str, Any]) -> None:
    """The user's per-task encoders and heads (``TaskModules``, one ``nn.Linear`` per task here)
    declare no owners, and need none: each task's module is its own parameters, which another
    task's forward pass never reaches (``TaskModules.forward`` runs the asked tasks' modules only),
    so their gradient stays None, not zero: the trainer zeroes with ``set_to_none=True`` and the
    balancer (GradNorm here) sets None for parameters outside the graph. The shared optimiser
    skips a parameter whose gradient is None (weight decay, momentum and step count included),
    which is what the per-task optimiser does for a block of another task. Checked with Adam, SGD
    and RMSprop, all with weight decay (a zero gradient would move the weights)."""
    cfg = _config(scheme, **train)
    cfg["model"] = {"encoder": [_linear(n, WIDTH) for n in (4, 13, 10)],  # iris, wine, friedman1
                    "core": {"width": WIDTH, "depth": D, "dropout": 0.0},
                    "head": [_linear(WIDTH, n) for n in (3, 3, 1)]}
    torch.manual_seed(0)
    cfg, tasks, model = prepare(cfg, None)
    trainer = Trainer(cfg, model, tasks)
    parts = [model.encoders.per_task, model.heads.per_task]
    assert all(len(part) == T for part in parts)
    modules = {id(p): s for part in parts for s, m in enumerate(part) for p in m.parameters()}
    core = [p for p in model.scheme.parameters() if id(p) not in modules]
    for step in range(1, 4):  # warm up: every module has optimiser state
        trainer.train_step(step)
    x, y = trainer.sampler.next()
    for t in range(T):
        params = [p for part in parts for m in part for p in m.parameters()]
        before = [p.detach().clone() for p in params]
        states = [_state(trainer, p) for p in params]
        assert all(states), "every user module has optimiser state after the warm-up"
        core_before = [p.detach().clone() for p in core]
        trainer._update(x[t:t + 1], y[t:t + 1], [t], step=4)
        for p, old, state in zip(params, before, states):
            after = _state(trainer, p)
            if modules[id(p)] == t:
                assert not torch.equal(p.detach(), old), f"task {t}'s own module did not move"
                if "step" in state:
                    assert torch.equal(after["step"], state["step"] + 1)
                continue
            assert p.grad is None, f"task {modules[id(p)]}'s module got a gradient in task {t}'s update"
            assert torch.equal(p.detach(), old), f"task {modules[id(p)]}'s module moved in task {t}'s update"
            assert state.keys() == after.keys() and all(torch.equal(state[k], after[k]) for k in state), \
                f"task {modules[id(p)]}'s optimiser state moved in task {t}'s update"
        assert any(not torch.equal(p.detach(), old) for p, old in zip(core, core_before)), "the core did not move"
