"""Turn a plain dict (from YAML plus overrides) into a RunConfig, reporting every problem at once."""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from typing import Any

from sharewise.config.components import check_components, has_component
from sharewise.config.schema import CoreConfig, EncoderConfig, RunConfig, TrainConfig
from sharewise.errors import ConfigError
from sharewise.options import type_name, type_ok, unknown_key, check_options, is_set, valid_options


def _build(cls: type, data: Any, where: str, problems: list[str]) -> Any:
    if not isinstance(data, dict):
        problems.append(f"{where.rstrip('.') or 'config'}: expected a mapping, got {type(data).__name__} {data!r}")
        return cls()
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            problems.append(unknown_key(str(key), list(fields), where))
            continue
        hint, meta = hints[key], fields[key].metadata
        if meta.get("component") and has_component(value):
            check_components(value, f"{where}{key}", problems)  # a user module in place of the section
            kwargs[key] = value
            continue
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, f"{where}{key}.", problems)
            continue
        if not type_ok(value, hint):
            problems.append(f"{where}{key}: expected {type_name(hint)}, got {type(value).__name__} {value!r}")
            continue
        if "choices" in meta and value not in meta["choices"]:
            problems.append(f"{where}{key}: expected one of {list(meta['choices'])}, got {value!r}")
            continue
        if "min" in meta and value is not None and value < meta["min"]:
            problems.append(f"{where}{key}: expected a value >= {meta['min']}, got {value!r}")
            continue
        kwargs[key] = float(value) if hint is float and isinstance(value, int) else value
    return cls(**kwargs)


_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # a config name is one folder under runs/


def _non_finite(value: Any, where: str) -> list[str]:
    """``key: ... got inf`` for every NaN or infinite number anywhere in the config (YAML reads
    ``.inf`` / ``.nan`` as floats; no setting means them, and a range check lets ``inf`` through)."""
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{where.rstrip('.') or '(config)'}: expected a finite number, got {value}"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _non_finite(v, f"{where}{k}.")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _non_finite(v, f"{where.rstrip('.')}[{i}].")]
    return []


def parse_config(data: dict[str, Any]) -> RunConfig:
    """Validate ``data`` completely; raise one ConfigError listing every problem.

    The modules a config's ``imports`` names are imported first, so the schemes and task sets
    they register are checked like the built-in ones.
    """
    from sharewise.data.tasksets._registry import BUILDER_ARGUMENTS as TASKSET_ARGUMENTS
    from sharewise.data.tasksets._registry import TASKSETS
    from sharewise.registry import import_modules
    from sharewise.sharing._registry import BUILDER_ARGUMENTS as SCHEME_ARGUMENTS
    from sharewise.sharing._registry import SCHEMES

    problems: list[str] = []
    if isinstance(data, dict) and isinstance(data.get("imports"), list):
        problems += import_modules(data["imports"])
    problems += _non_finite(data, "")
    cfg = _build(RunConfig, data, "", problems)
    if cfg.scheme not in SCHEMES:
        problems.append(f"scheme: {SCHEMES.unknown(cfg.scheme)}")
    else:
        check_options(SCHEMES.get(cfg.scheme), cfg.scheme_options, "scheme_options.", problems,
                      skip=SCHEME_ARGUMENTS)
    if cfg.tasks.builder not in TASKSETS:
        problems.append(f"tasks.builder: {TASKSETS.unknown(cfg.tasks.builder)}")
    else:
        check_options(TASKSETS.get(cfg.tasks.builder), cfg.tasks.options, "tasks.options.", problems,
                      skip=TASKSET_ARGUMENTS)
    if cfg.train.structure_aware and cfg.train.aggregator is None:
        problems.append("train.structure_aware: needs a gradient aggregator (train.aggregator, e.g. upgrad); "
                        "without one every block's per-task gradients are summed, which is the default")
    if cfg.train.aggregator is not None:
        from sharewise.training.aggregation import build_aggregator

        try:
            build_aggregator(cfg.train.aggregator, cfg.train.aggregator_options)
        except ConfigError as err:
            problems.append(str(err))
    if cfg.train.weighting_options:
        from sharewise.training.weighting import build_weighting

        try:
            build_weighting(cfg.train.weighting, [], cfg.train.weighting_options)
        except ConfigError as err:
            problems.append(str(err))
    for registry, name, opts, skip in ((SCHEMES, cfg.scheme, cfg.scheme_options, SCHEME_ARGUMENTS),
                                       (TASKSETS, cfg.tasks.builder, cfg.tasks.options, TASKSET_ARGUMENTS)):
        check = registry.check(name) if name in registry else None
        if check is not None:  # its rules see only the options that passed their own
            problems += check(valid_options(registry.get(name), opts, skip), cfg, data)
    problems += ignored_keys(cfg, data)
    _check_core_blocks(cfg, data, problems)
    check_components(cfg.scheme_options, "scheme_options", problems)
    if isinstance(cfg.name, str) and not _PLAIN_NAME.fullmatch(cfg.name):
        problems.append(f"name: expected a plain folder name (letters, digits, '.', '_', '-', starting with a letter "
                        f"or digit), got {cfg.name!r}; the name becomes the folder runs/<name>, so it may not lead "
                        f"outside runs/")
    problems += _schedule_problems(cfg)
    if not 0.0 <= cfg.model.core.dropout < 1.0:
        problems.append(f"model.core.dropout: expected a drop probability in [0, 1), got {cfg.model.core.dropout}")
    if problems:
        lines = "\n  - ".join(problems)
        raise ConfigError(f"invalid configuration ({len(problems)} problem{'s' * (len(problems) > 1)}):\n  - {lines}")
    return cfg


def ignored_keys(cfg: RunConfig, data: dict[str, Any]) -> list[str]:
    """Keys the user set that the rest of the config makes ineffective (an error, not a no-op)."""
    problems: list[str] = []
    core, encoder = cfg.model.core, cfg.model.encoder
    if not isinstance(core, CoreConfig) or not isinstance(encoder, EncoderConfig):
        return problems  # a user module in place of the section: its own arguments are checked
    if cfg.model.core.kind == "dense":
        problems += [f"model.core.{k}: has no effect with model.core.kind=dense (it applies to conv cores); "
                     f"remove it, got {getattr(cfg.model.core, k)!r}"
                     for k in ("kernel_size", "pool", "init") if is_set(data, f"model.core.{k}", getattr(CoreConfig(), k))]
    if cfg.model.encoder.kind != "dense" and is_set(data, "model.encoder.activation", EncoderConfig().activation):
        problems.append(f"model.encoder.activation: has no effect with model.encoder.kind={cfg.model.encoder.kind} "
                        f"(only dense encoders have one); remove it, got {cfg.model.encoder.activation!r}")
    train = cfg.train
    if isinstance(train, TrainConfig) and train.lr_schedule == "constant" and is_set(
            data, "train.min_lr_ratio", TrainConfig().min_lr_ratio):
        problems.append(f"train.min_lr_ratio: has no effect with train.lr_schedule=constant (it is where a cosine or "
                        f"linear schedule ends); set train.lr_schedule=cosine or remove it, got {train.min_lr_ratio!r}")
    return problems


def _schedule_problems(cfg: RunConfig) -> list[str]:
    """Learning-rate schedule settings that cannot work together with the step count."""
    train = cfg.train
    if not isinstance(train, TrainConfig) or not all(isinstance(v, (int, float)) for v in (
            train.steps, train.warmup_steps, train.min_lr_ratio)):
        return []  # a wrong type is already reported
    problems = []
    if train.warmup_steps >= train.steps and train.warmup_steps > 0:
        problems.append(f"train.warmup_steps: {train.warmup_steps} warm-up steps leave none of the "
                        f"{train.steps} training steps at the full rate; use fewer than train.steps")
    if train.min_lr_ratio > 1.0:
        problems.append(f"train.min_lr_ratio: a schedule ends at this fraction of the configured rate, so it must "
                        f"be in [0, 1], got {train.min_lr_ratio}")
    return problems


def _check_core_blocks(cfg: RunConfig, data: dict[str, Any], problems: list[str]) -> None:
    """``model.core.blocks``: D component specs, or one that returns them; depth must agree."""
    blocks = cfg.model.core.blocks
    if blocks is None:
        return
    if not has_component(blocks):
        problems.append(f"model.core.blocks: expected a list of {{_component_: ...}} specs or one spec that returns "
                        f"the list of blocks, got {blocks!r}")
        return
    check_components(blocks, "model.core.blocks", problems)
    raw = data.get("model", {}).get("core", {}) if isinstance(data.get("model"), dict) else {}
    given_depth = raw.get("depth") if isinstance(raw, dict) else None
    if isinstance(blocks, list) and given_depth is not None and given_depth != len(blocks):
        problems.append(f"model.core.depth: the core has the {len(blocks)} blocks of model.core.blocks, but "
                        f"depth={given_depth} was given; drop depth or make it {len(blocks)}")
    elif isinstance(blocks, list):
        cfg.model.core.depth = len(blocks)  # the saved config says what was built


def config_to_dict(cfg: RunConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
