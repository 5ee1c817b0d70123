"""Everything needed to continue a run exactly: ``checkpoint.pt`` in the run directory.

Exactness needs *every* source of randomness and every accumulator, not only the weights:

- model and optimiser state (Adam moments and step counts);
- the torch global CPU RNG (dropout draws from it) and CUDA's when present;
- the trainer's own generators (data sampler: generator + permutations + positions; the
  alternating mode's task-order generator), the step, ``update_count`` (schedules such as the
  Gumbel temperature are functions of it), the best validation score and state, the history and
  the running-loss accumulators;
- any ``torch.Generator`` held as an attribute of a module in the model (e.g. a scheme's noise
  generator) and any non-module attribute object with ``state_dict``/``load_state_dict`` (e.g. a
  stateful schedule), found by walking ``model.modules()``, so a new scheme needs no code here.

Written with :func:`sharewise.training.io.save_torch` (temporary file, fsync, rename), so a kill
while writing leaves the previous checkpoint intact. Training draws no numbers from Python's
``random`` or NumPy, so their states are not stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from sharewise.errors import DataError, SharewiseError
from sharewise.training.io import load_torch, save_torch

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT_VERSION = 3  # 2: per-task optimiser state (training/task_optim.py); 3: also for task-owned blocks


class CheckpointError(SharewiseError):
    """A checkpoint that is missing, unreadable or does not fit the run."""


def _stateful_attributes(model: nn.Module) -> dict[str, Any]:
    """``"module.path:attr" -> obj`` for generators and state_dict-bearing plain objects."""
    found: dict[str, Any] = {}
    for name, module in model.named_modules():
        for attr, value in vars(module).items():
            if attr.startswith("_"):
                continue  # nn.Module internals (_parameters, _buffers, _modules, hooks)
            key = f"{name}:{attr}"
            if isinstance(value, torch.Generator):
                found[key] = value
            elif (not isinstance(value, (nn.Module, torch.Tensor, torch.optim.Optimizer))
                  and callable(getattr(value, "state_dict", None))
                  and callable(getattr(value, "load_state_dict", None))):
                found[key] = value
    return found


def module_states(model: nn.Module) -> dict[str, Any]:
    """States of the generators and stateful objects found on the model's modules."""
    out: dict[str, Any] = {}
    for key, obj in _stateful_attributes(model).items():
        out[key] = obj.get_state() if isinstance(obj, torch.Generator) else obj.state_dict()
    return out


def load_module_states(model: nn.Module, states: dict[str, Any]) -> None:
    targets = _stateful_attributes(model)
    # Checkpoints written before MultiTaskModel.core was renamed to .scheme name it "core".
    states = {("scheme" + k[4:] if k.startswith("core:") or k.startswith("core.") else k): v
              for k, v in states.items()}
    missing = sorted(set(states) - set(targets))
    if missing:
        raise CheckpointError(
            f"the checkpoint holds state for {missing}, which this model does not have; was the "
            f"scheme or the code changed since the run started? Valid here: {sorted(targets)}"
        )
    for key, state in states.items():
        obj = targets[key]
        if isinstance(obj, torch.Generator):
            obj.set_state(state)
        else:
            obj.load_state_dict(state)


def global_rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["torch_cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_global_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch_cpu"])
    if "torch_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["torch_cuda"])


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    save_torch(path, {"format": FORMAT_VERSION, **state})


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {str(path)!r}: the run stopped before its first "
                              f"checkpoint (train.checkpoint_every); start it again instead")
    try:
        state = load_torch(path, "checkpoint")
    except DataError as err:
        raise CheckpointError(f"{err}. The run cannot continue from it: restore the file, or start the run "
                              f"again with --overwrite") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        got = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"checkpoint {str(path)!r}: expected format {FORMAT_VERSION}, got {got!r} (written "
                              f"by another sharewise version; start the run again)")
    return state
