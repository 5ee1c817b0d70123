"""One run, end to end: validate, load data, build, train, evaluate, write the run directory.

Everything that can fail on user input (config, data files, shapes) fails *before* the run
directory is touched, so a bad invocation never leaves half-written outputs. Results files are
written atomically (``metrics.jsonl`` is appended line by line with fsync), and one process at a
time writes a run directory (:class:`~sharewise.training.lock.RunLock`).

Run directory layout::

    config.yaml      the resolved configuration (all defaults filled in)
    run.json         written at the start: config, seed, versions, git revision, threads; resumes
    metrics.jsonl    one line per evaluation (per-task val/test loss and error, scheme metrics)
    checkpoint.pt    everything needed to continue exactly (``sharewise run --resume DIR``)
    summary.json     final per-task test metrics of the best checkpoint + run metadata
    best.pt          the best model state (by summed validation loss)
    plots/*.png      learning curves and the learned structure (when asked for: ``--plots``)
    report.html/.md  the run report (``--report``, or ``sharewise report DIR`` at any time)

Data-parallel (``dist`` with several ranks, from ``torchrun``; see
:mod:`sharewise.training.distributed`): every rank loads the data, builds the model on its
device and trains; only rank 0 takes the lock and writes the run directory, and a failure there
(a locked or finished run directory) stops every rank. Resume reads the checkpoint on every rank,
so the run directory must be on a file system all nodes see.
"""

from __future__ import annotations

import datetime
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import yaml

from sharewise.builders import build_model
from sharewise.config import RunConfig, config_to_dict, parse_config, read_yaml
from sharewise.data.streaming import first_inputs
from sharewise.data.tasksets import build_tasks
from sharewise.errors import ConfigError
from sharewise.summary import summarise
from sharewise.tasks.spec import TaskData, check_task_list
from sharewise.training import distributed
from sharewise.training.checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint
from sharewise.training.distributed import SINGLE, DistContext
from sharewise.training.io import read_json, read_jsonl, save_torch, write_json, write_text
from sharewise.training.lock import RunLock
from sharewise.training.metadata import run_metadata
from sharewise.training.progress import ProgressBar
from sharewise.training.signals import StopRequest
from sharewise.training.trainer import Trainer

RESULT_FILES = ("summary.json", "metrics.jsonl", CHECKPOINT_NAME, "best.pt", "report.html", "report.md")


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)


def prepare(config: RunConfig | dict[str, Any], data_dir: str | None) -> tuple[RunConfig, list[TaskData], Any]:
    """Validate (a dict; a RunConfig is already valid), load tasks and build the model: everything
    that can fail on bad input."""
    cfg = config if isinstance(config, RunConfig) else parse_config(config)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    tasks = build_tasks(cfg.tasks.builder, data_dir=data_dir, seed=cfg.seed, options=cfg.tasks.options)
    tasks = check_task_list(tasks, cfg.tasks.builder)
    seed_everything(cfg.seed)
    with _shape_errors(cfg, tasks):
        model = build_model(cfg, tasks)
        check_shapes(model, tasks)
    if cfg.adapt:  # `sharewise adapt`: the parent's shared blocks, loaded and frozen
        from sharewise.adapt import adopt_parent

        adopt_parent(model, cfg)
    return cfg, tasks, model


def _same_input_shape(tasks: list[TaskData]) -> bool:
    return len({t.input_shape for t in tasks}) == 1


@contextmanager
def _shape_errors(cfg: RunConfig, tasks: list[TaskData]) -> Iterator[None]:
    """torch's shape errors while building or probing the model -> one ShapeError naming the parts."""
    from sharewise.errors import ShapeError

    try:
        yield
    except (RuntimeError, ValueError, IndexError, TypeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        shapes = ", ".join(f"{t.name} {list(t.input_shape)}" for t in tasks[:4]) + (", ..." if len(tasks) > 4 else "")
        raise ShapeError(f"the model cannot process these tasks' inputs ({shapes}) with encoder "
                         f"{cfg.model.encoder.kind!r}, core {cfg.model.core.kind!r} and scheme {cfg.scheme!r}: {first}. "
                         f"Change model.encoder / model.core so the encoder's output fits the core (e.g. a conv "
                         f"core needs as many channels as model.core.width: model.encoder.kind=channel_pad)") from None


def check_shapes(model: Any, tasks: list[TaskData]) -> None:
    """One forward pass of two training inputs per task, so shapes that cannot work (a conv core on
    1-channel images an identity encoder passes through, a width a scheme cannot take) fail before
    any work instead of as a traceback at the first step. Runs in eval mode with every RNG restored
    afterwards, so training draws exactly the numbers it would have drawn without it."""
    from sharewise.training.checkpoint import load_module_states, module_states

    saved = module_states(model)
    was_training = model.training
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            model.eval()
            heads = [first_inputs(t, 2) for t in tasks]  # [<=2, *in] each (streamed tasks: read from disk)
            n = min(h.shape[0] for h in heads)
            x = torch.stack([h[:n] for h in heads]) if _same_input_shape(tasks) else None
            if x is not None:
                model(x, list(range(len(tasks))))
            else:
                for i, h in enumerate(heads):
                    model(h.unsqueeze(0), [i])
    finally:
        model.train(was_training)
        load_module_states(model, saved)


def check_out_dir(out: Path, overwrite: bool) -> None:
    if overwrite:
        return
    if (out / "summary.json").exists():
        raise ConfigError(f"output directory {str(out)!r} already holds a finished run (summary.json); "
                          f"choose another --out or pass --overwrite")
    if (out / CHECKPOINT_NAME).exists():
        raise ConfigError(f"output directory {str(out)!r} holds an unfinished run ({CHECKPOINT_NAME}); "
                          f"continue it with: sharewise run --resume {out}  (or pass --overwrite to start over)")


def utc_now() -> str:
    """The time stamps of run.json (start, resumes, extensions)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def check_checkpoint_config(run_dir: Path, state: dict[str, Any], cfg: RunConfig, fix: str) -> None:
    """Refuse a checkpoint whose stored config is not ``run_dir/config.yaml``'s (``cfg``): resuming
    or extending it would silently train another configuration. ``fix`` ends the message."""
    saved = state.get("config")  # resolved again: keys added since it was written get their defaults
    if saved is None or config_to_dict(parse_config(saved)) != config_to_dict(cfg):
        raise CheckpointError(f"{run_dir / 'config.yaml'} differs from the configuration the "
                              f"checkpoint was written with; {fix}")


def check_tensorboard() -> None:
    """Fail before any work when --tensorboard is asked for but the package is missing."""
    from sharewise.training.loggers import TensorBoardLogger

    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        TensorBoardLogger("unused")  # raises the explanatory ConfigError


@contextmanager
def _main_lock(run_dir: Path, dist: DistContext) -> Iterator[None]:
    """Rank 0 holds the run directory's lock; the other ranks learn whether it got it."""
    lock = RunLock(run_dir)
    dist.on_main(lock.acquire)
    try:
        yield
    finally:
        if dist.is_main:
            lock.release()


def _place(cfg: RunConfig, model: Any, dist: DistContext) -> None:
    model.to(dist.device)
    distributed.seed_rank(cfg.seed, dist)  # after the model is built: same init, own dropout stream


def run(config: RunConfig | dict[str, Any], out: str | Path, data_dir: str | None = None, overwrite: bool = False,
        progress: bool = False, tensorboard: bool = False, dist: DistContext = SINGLE) -> dict[str, Any] | None:
    """Train one configuration (a parsed :class:`RunConfig`, or a dict parsed here) and write its
    run directory; returns the summary (None on ranks other than 0, which write nothing).

    Plots and the report are separate steps on the finished directory
    (``sharewise.reporting.run_plots.plot_run``, ``sharewise.reporting.report.write_report``;
    the CLI's ``--plots`` / ``--report``), so the runner needs no plotting code.
    """
    from sharewise.rundir import check_output_dir

    out = check_output_dir(out)
    cfg, tasks, model = prepare(config, data_dir)
    _place(cfg, model, dist)
    if tensorboard:
        check_tensorboard()

    def start() -> None:
        check_out_dir(out, overwrite)
        for name in RESULT_FILES:
            (out / name).unlink(missing_ok=True)
        resolved = config_to_dict(cfg)
        write_text(out / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))
        info = {"config": resolved, "seed": cfg.seed, "data_dir": data_dir, "started_at": utc_now(),
                "meta": run_metadata(), "resumes": []}
        if dist.enabled:
            info["world_size"] = dist.world
        write_json(out / "run.json", info)

    with _main_lock(out, dist):
        dist.on_main(start)
        return _train(cfg, tasks, model, out, dist, progress, tensorboard)


def resume(run_dir: str | Path, data_dir: str | None = None, progress: bool = False,
           tensorboard: bool = False, dist: DistContext = SINGLE) -> dict[str, Any] | None:
    """Continue a stopped or killed run from ``run_dir/checkpoint.pt`` exactly where it was."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"{str(run_dir)!r} is not a run directory (no config.yaml); pass the --out "
                          f"directory of a stopped run")
    if (run_dir / "summary.json").exists():
        raise ConfigError(f"run {str(run_dir)!r} already finished (summary.json exists); nothing to resume")
    info = read_json(run_dir / "run.json", "run record") if (run_dir / "run.json").exists() else {}
    if info and not isinstance(info.get("resumes", []), list):
        raise CheckpointError(f"{run_dir / 'run.json'}: 'resumes' must be a list of earlier resumes; the file is "
                              f"damaged. Restore it (or delete it to continue without the start/resume record)")
    if data_dir is None:
        data_dir = info.get("data_dir")
    cfg, tasks, model = prepare(read_yaml(run_dir / "config.yaml"), data_dir)
    _place(cfg, model, dist)
    if tensorboard:
        check_tensorboard()
    with _main_lock(run_dir, dist):
        state = load_checkpoint(run_dir / CHECKPOINT_NAME)  # every rank reads it
        check_checkpoint_config(run_dir, state, cfg, "restore it or start a new run")
        def restart(step: int) -> None:
            metrics = run_dir / "metrics.jsonl"
            if metrics.exists():  # drop lines a killed process wrote after its last checkpoint
                records = read_jsonl(metrics)
                bad = next((i for i, r in enumerate(records, 1) if not isinstance(r.get("step"), int)), None)
                if bad is not None:
                    raise CheckpointError(f"{metrics}: record {bad} has no integer 'step'; the history is damaged. "
                                          f"Restore the file (resuming would drop records)")
                kept = [r for r in records if r["step"] <= step]
                write_text(metrics, "".join(json.dumps(r) + "\n" for r in kept))
            if info:
                entry = {"step": step, "at": utc_now(), "meta": run_metadata()}
                if dist.enabled:
                    entry["world_size"] = dist.world
                info.setdefault("resumes", []).append(entry)
                write_json(run_dir / "run.json", info)

        return _train(cfg, tasks, model, run_dir, dist, progress, tensorboard, state, restart)


def _load_state(trainer: Trainer, state: dict[str, Any], path: Path) -> None:
    try:
        trainer.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"checkpoint {str(path)!r} does not hold a complete state "
                              f"for this run ({type(err).__name__}: {first}); it is damaged or from another "
                              f"version of sharewise. Restore it, or start the run again with --overwrite") from None


def _train(cfg: RunConfig, tasks: list[TaskData], model: Any, out: Path, dist: DistContext, progress: bool,
           tensorboard: bool, state: dict[str, Any] | None = None,
           on_resumed: Callable[[int], None] | None = None) -> dict[str, Any] | None:
    """Build the trainer with everything it needs (progress line, loggers, stop request), train
    (from ``state`` when resuming; ``on_resumed(step)`` runs on rank 0 once the state loaded) and,
    on rank 0, write best.pt and summary.json."""
    main = dist.is_main
    try:  # for the progress line and TensorBoard only; a damaged state fails in _load_state
        step = int(state.get("step", 0)) if state is not None else 0
    except (TypeError, ValueError):
        step = 0
    bar = ProgressBar(cfg.train.steps, label=f"{cfg.scheme} seed {cfg.seed}", initial=step,
                      enabled=None if progress and main else False)
    loggers = []
    if tensorboard and main:
        from sharewise.training.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(out / "tensorboard", purge_step=step + 1 if step else None))
    try:
        with StopRequest() as stop:
            trainer = Trainer(cfg, model, tasks, run_dir=out if main else None, progress=bar, loggers=loggers,
                              stop=stop, dist=dist)
            if state is not None:
                _load_state(trainer, state, out / CHECKPOINT_NAME)
                if on_resumed is not None:
                    dist.on_main(lambda: on_resumed(trainer.step))
            result = trainer.fit(checkpoint_extra={"config": config_to_dict(cfg)})
    finally:
        bar.close()
        for logger in loggers:
            logger.close()
    if not main:
        return None
    model.load_state_dict(result.best_state)
    save_torch(out / "best.pt", {"model": result.best_state, "step": result.best_step})
    summary = summarise(cfg, tasks, model, result, result.elapsed_s, trainer.loss_fn)
    for message in summary["warnings"]:  # the run log (stderr); also in summary.json
        print(f"warning ({out}): {message}", file=sys.stderr, flush=True)
    if dist.enabled:
        summary["world_size"] = dist.world
    if (out / "run.json").exists():
        record = read_json(out / "run.json", "run record")
        summary["resumed_at_steps"] = [r["step"] for r in record.get("resumes", [])]
        if "extended_from" in record:  # sharewise extend: which run this one continues, and from which step
            summary["extended_from"] = record["extended_from"]
    write_json(out / "summary.json", summary)
    return summary
