"""Train a finished (or stopped) run for more steps, into a new run directory.

Why: whether a run has converged is only known once it has run. When the learning curve is still
falling at the planned end, training again from step 0 for longer repeats every step already
paid for. With a constant learning rate (a warm-up included) nothing in sharewise's training
depends on the *planned* number of steps (schedules such as the Gumbel temperature count the
updates done, not the updates left), so continuing a run of N steps to M gives the same parameters as a run
planned for M steps from the start. The one difference: the old run evaluated at its last step
N, which a run planned for M does only when N is a multiple of ``train.eval_every``; that record
stays in the history (evaluation draws no random numbers, so the parameters are unaffected).

The source run directory is read, never written: its checkpoint, metrics and summary stay as
they were, and the extended run lives in its own directory (``run.json`` and ``summary.json``
name the source under ``extended_from``). A run with a decaying ``train.lr_schedule`` is refused:
its rates were set by its planned length.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from sharewise.config import config_to_dict, parse_config, read_yaml
from sharewise.errors import ConfigError
from sharewise.rundir import check_output_dir, claim_output_dir
from sharewise.runner import check_checkpoint_config, utc_now
from sharewise.training.checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint, save_checkpoint
from sharewise.training.io import read_json, read_jsonl, write_json, write_text
from sharewise.training.metadata import run_metadata
from sharewise.training.schedule import depends_on_length


def prepare_extension(source: str | Path, steps: int, out: str | Path) -> Path:
    """Write ``out`` as a stopped run at the source's last checkpoint, planned for ``steps`` steps.

    Everything is checked before anything is written: the source must hold a config and a
    checkpoint that agree, ``steps`` must exceed the steps already trained, and ``out`` must be a
    new or empty folder other than the source. Continue it with :func:`sharewise.runner.resume`.
    """
    import yaml

    source, out = Path(source), Path(out)
    if not (source / "config.yaml").is_file() or not (source / CHECKPOINT_NAME).is_file():
        missing = "config.yaml" if not (source / "config.yaml").is_file() else CHECKPOINT_NAME
        raise ConfigError(f"{str(source)!r} is not a run directory that can be extended (no {missing}); pass the "
                          f"--out folder of a finished or stopped sharewise run")
    if out.resolve() == source.resolve():
        raise ConfigError(f"--out {str(out)!r} is the run being extended; the source stays as it is, so pass a "
                          f"new folder for the extended run")
    check_output_dir(out)
    if out.is_dir() and any(out.iterdir()):
        raise ConfigError(f"--out {str(out)!r} is not empty; pass a new or empty folder for the extended run")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"--steps must be a positive number of training steps, got {steps!r}")

    saved = read_yaml(source / "config.yaml")
    if not isinstance(saved, dict) or not isinstance(saved.get("train"), dict):
        raise ConfigError(f"{source / 'config.yaml'} is not a sharewise run configuration (no 'train' section); "
                          f"restore it from the run's run.json")
    state = load_checkpoint(source / CHECKPOINT_NAME)
    cfg = parse_config(saved)
    check_checkpoint_config(source, state, cfg, "restore it before extending the run")
    trained = state.get("step")
    if isinstance(trained, bool) or not isinstance(trained, int):
        raise CheckpointError(f"{source / CHECKPOINT_NAME} has no integer 'step'; it is damaged")
    if depends_on_length(cfg.train.lr_schedule):
        raise ConfigError(f"{str(source)!r} was trained with train.lr_schedule={cfg.train.lr_schedule}, whose rates "
                          f"depend on the planned {cfg.train.steps} steps: its steps so far followed a decay that "
                          f"a run planned for {steps} would not have taken. Start a new run with "
                          f"train.steps={steps} instead (or use train.lr_schedule=constant for runs you may extend)")
    if steps <= trained:
        raise ConfigError(f"--steps {steps} does not extend {str(source)!r}, which has trained {trained} steps; "
                          f"pass more than {trained}")

    extended = copy.deepcopy(saved)
    extended["train"]["steps"] = steps
    resolved = config_to_dict(parse_config(extended))
    records = read_jsonl(source / "metrics.jsonl") if (source / "metrics.jsonl").exists() else []
    kept = [r for r in records if isinstance(r.get("step"), int) and r["step"] <= trained]
    info: dict[str, Any] = {}
    if (source / "run.json").is_file():
        info = read_json(source / "run.json", "run record")
    origin = {"run_dir": str(source.resolve()), "step": trained, "planned_steps": cfg.train.steps,
              "at": utc_now(), "meta": run_metadata()}
    info = {**info, "config": resolved, "extended_from": origin}
    info.setdefault("seed", cfg.seed)

    claim_output_dir(out)
    write_text(out / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))
    write_text(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in kept))
    write_json(out / "run.json", info)
    save_checkpoint(out / CHECKPOINT_NAME, {**state, "config": resolved})  # last: its presence marks the run
    return out

