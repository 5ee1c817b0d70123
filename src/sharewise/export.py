"""``sharewise export RUN_DIR --task NAME``: one task of a finished run as a plain module.

The multi-task model computes every task through encoders, a sharing scheme and heads that all
take a task axis. A user who wants one task's predictor needs only what that task uses: its
encoder and head, and the scheme reduced to the task (``SharingScheme.export_task``: inactive
Gumbel-Matrix components removed, soft-order scales folded in, a branched tree cut to the
task's path...). The result is traced into TorchScript, so it runs where only torch is
installed, and checked against the multi-task model on the test split before it is written.

Written to ``RUN_DIR/export/<task>/`` (or ``--out``)::

    model.torchscript.pt   torch.jit.load(...)(x) with x [B, *input_shape] -> [B, n_outputs]
    state_dict.pt          the plain module's state (classes in sharewise.components.plain)
    export.json            sizes and multiply-adds beside the multi-task model's, the check
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sharewise.errors import ConfigError, ExportError
from sharewise.model import MultiTaskModel
from sharewise.tasks.spec import TaskData

TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}  # exported vs multi-task outputs (float reassociation only)


def load_run(run_dir: str | Path, data_dir: str | None = None) -> tuple[Any, list[TaskData], MultiTaskModel]:
    """(config, tasks, model with its best state) of a finished run directory."""
    from sharewise.builders import build_model
    from sharewise.config import parse_config, read_yaml
    from sharewise.data.tasksets import build_tasks

    run_dir = Path(run_dir)
    missing = [n for n in ("config.yaml", "best.pt") if not (run_dir / n).is_file()]
    if missing:
        raise ConfigError(f"{str(run_dir)!r} is not a finished run directory (missing {', '.join(missing)}); "
                          f"pass the --out directory of a run that has finished")
    from sharewise.rundir import load_best_state, recorded_data_dir

    if data_dir is None:
        data_dir = recorded_data_dir(run_dir)
    cfg = parse_config(read_yaml(run_dir / "config.yaml"))
    tasks = build_tasks(cfg.tasks.builder, data_dir=data_dir, seed=cfg.seed, options=cfg.tasks.options)
    from sharewise.data.streaming import require_in_memory

    require_in_memory(tasks, "export")
    model = build_model(cfg, tasks)
    load_best_state(model, run_dir)
    return cfg, tasks, model.eval()


def task_index(tasks: Sequence[TaskData], name: str) -> int:
    names = [t.name for t in tasks]
    if name not in names:
        raise ConfigError(f"--task {name!r} is not a task of this run; its tasks are {names}")
    return names.index(name)


def parameter_count(module: nn.Module) -> int:
    """Numbers a module stores: every floating-point tensor of its state dict (weights, logits,
    batch-norm statistics), so the multi-task and the exported model are counted alike."""
    return sum(v.numel() for v in module.state_dict().values() if v.is_floating_point())


def multiply_adds(fn: Any, *args: Any) -> int:
    """Multiply-adds of one call (matrix products and convolutions: PyTorch's flop counter / 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        fn(*args)
    return int(counter.get_total_flops()) // 2


def reference_outputs(model: MultiTaskModel, tasks: Sequence[TaskData], index: int, split: str = "test",
                      batch_size: int = 1024) -> Tensor:
    """The multi-task model's outputs for task ``index`` on ``split``, computed as evaluation does
    (inputs in the training layout, the task alone): ``[N, n_outputs]``."""
    from sharewise.data.sampler import stack_inputs

    xs, _ = stack_inputs([t.split(split)[0] for t in tasks])
    x = xs[index]
    with torch.no_grad():
        outs = [model(x[s:s + batch_size].unsqueeze(0), [index])[0] for s in range(0, x.shape[0], batch_size)]
    return torch.cat(outs)[:, :tasks[index].n_outputs]


def export_task(model: MultiTaskModel, tasks: Sequence[TaskData], index: int) -> nn.Module:
    """Task ``index`` of ``model`` as a plain evaluation-mode module on the task's own inputs."""
    model.eval()
    return model.export_task(index, tasks[index].n_outputs)


def trace(plain: nn.Module, example: Tensor) -> torch.jit.ScriptModule:
    """TorchScript of ``plain`` (shapes other than the batch size are fixed by ``example``).
    ``torch.jit.trace`` is deprecated in favour of ``torch.export``, but its file is what a
    process with only torch loads and runs (``torch.jit.load``) across versions today."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        return torch.jit.trace(plain, example, check_trace=False)


def export_run(run_dir: str | Path, task: str, out: str | Path | None = None,
               data_dir: str | None = None) -> dict[str, Any]:
    """Export task ``task`` of the finished run ``run_dir``; returns what ``export.json`` holds."""
    from sharewise.training.io import save_torch, write_json

    run_dir = Path(run_dir)
    cfg, tasks, model = load_run(run_dir, data_dir)
    index = task_index(tasks, task)
    plain = export_task(model, tasks, index)
    x_test = tasks[index].split("test")[0]
    if x_test.shape[0] == 0:
        raise ExportError(f"task {task!r} has no test samples to check the export on")
    traced = trace(plain, x_test[:2])
    with torch.no_grad():
        got = torch.cat([traced(x_test[s:s + 1024]) for s in range(0, x_test.shape[0], 1024)])
    want = reference_outputs(model, tasks, index)
    diff = float((got - want).abs().max())
    if not torch.allclose(got, want, **TOLERANCE):
        raise ExportError(f"the exported {cfg.scheme} task {task!r} differs from the multi-task model on the test "
                          f"split (max |diff| {diff:.3g}); this is a bug in the scheme's export_task, please report it")
    one = x_test[:1]
    stacked = first_samples(tasks)  # [T, 1, *in]
    info: dict[str, Any] = {
        "run": str(run_dir), "scheme": cfg.scheme, "task": task, "task_index": index,
        "input_shape": list(tasks[index].input_shape), "n_outputs": tasks[index].n_outputs,
        "exported": {"parameters": parameter_count(plain), "multiply_adds_per_sample": multiply_adds(plain, one)},
        "multi_task": {
            "parameters": parameter_count(model),
            "multiply_adds_per_sample_this_task": multiply_adds(
                lambda x: model(x[index:index + 1], [index]), stacked),
            "multiply_adds_per_sample_all_tasks": multiply_adds(model, stacked),
        },
        "test_check": {"samples": int(x_test.shape[0]), "max_abs_diff": diff, **TOLERANCE},
    }
    from sharewise.rundir import claim_output_dir

    dest = claim_output_dir(out) if out is not None else run_dir / "export" / task
    dest.mkdir(parents=True, exist_ok=True)
    traced.save(str(dest / "model.torchscript.pt.tmp"))
    (dest / "model.torchscript.pt.tmp").replace(dest / "model.torchscript.pt")
    save_torch(dest / "state_dict.pt", plain.state_dict())
    info["files"] = {"torchscript": str(dest / "model.torchscript.pt"), "state_dict": str(dest / "state_dict.pt")}
    info["module"] = repr(plain)
    write_json(dest / "export.json", info)
    return info


def first_samples(tasks: Sequence[TaskData]) -> Tensor:
    """One test sample of every task in the multi-task model's layout ``[T, 1, *in]``."""
    from sharewise.data.sampler import stack_inputs

    xs, _ = stack_inputs([t.split("test")[0][:1] for t in tasks])
    return torch.stack(xs)
