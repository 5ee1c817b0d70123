"""Implementations of the CLI commands (thin: parse, call the library, print)."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from sharewise.config import apply_overrides, parse_config, read_yaml
from sharewise.errors import ConfigError


_FLAG_NAMES = {"train.steps": "--steps", "seed": "--seed", "scheme": "--scheme"}


def load_config(path: str | None, overrides: list[str], **flags: Any) -> dict[str, Any]:
    """The config file with ``key=value`` overrides and option flags applied.

    A key given twice (two overrides, or an override and its option such as ``--steps`` with
    ``train.steps=``) is refused rather than letting the last one silently win.
    """
    given = [item.split("=", 1)[0].strip() for item in overrides if "=" in item]
    given += [k for k, v in flags.items() if v is not None]
    twice = sorted({k for k in given if given.count(k) > 1})
    if twice:
        names = ", ".join(f"{k} (also {_FLAG_NAMES[k]})" if k in _FLAG_NAMES and k in flags and flags[k] is not None
                          else k for k in twice)
        raise ConfigError(f"{names} given more than once on the command line; give each setting once")
    data = read_yaml(path) if path else {}
    extra = [f"{k}={v}" for k, v in flags.items() if v is not None]
    return apply_overrides(data, list(overrides) + extra)


def _seeds(text: str) -> list[int]:
    """``--seeds``: non-empty, non-negative, no repeats (a repeated seed is the same run twice)."""
    parts = [s.strip() for s in text.split(",")]
    try:
        seeds = [int(s) for s in parts if s]
    except ValueError:
        raise ConfigError(f"--seeds must be comma-separated integers such as 0,1,2, got {text!r}") from None
    if not seeds or "" in parts[:-1] or any(s < 0 for s in seeds):
        raise ConfigError(f"--seeds must list one or more non-negative integers separated by single commas, "
                          f"such as 0,1,2; got {text!r}")
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise ConfigError(f"--seeds lists {repeated} more than once ({text!r}); a seed names one run, list it once")
    return seeds


def _schemes(text: str) -> list[str]:
    """``--schemes``: non-empty, no repeats (each scheme is one set of grid cells)."""
    parts = [s.strip() for s in text.split(",")]
    schemes = [s for s in parts if s]
    if not schemes or "" in parts[:-1]:
        raise ConfigError(f"--schemes must list one or more scheme names separated by single commas, such as "
                          f"parallel,soft_ordering; got {text!r} (see `sharewise validate --list`)")
    repeated = sorted({s for s in schemes if schemes.count(s) > 1})
    if repeated:
        raise ConfigError(f"--schemes lists {repeated} more than once ({text!r}); list each scheme once")
    return schemes


def _positive(value: int | None, option: str, what: str) -> None:
    if value is not None and value < 1:
        raise ConfigError(f"{option} must be a positive number of {what}, got {value}")


def _print_result(summary: dict[str, Any], out: Path | str) -> None:
    from sharewise.summary import headline

    print(f"{summary['scheme']} seed {summary['seed']}: {headline(summary)} ({summary['wall_time_s']:.1f} s) -> {out}")


def cmd_run(args: argparse.Namespace) -> int:
    """Under ``torchrun`` (RANK/WORLD_SIZE set) every rank runs this; see ``sharewise.training.distributed``."""
    from sharewise.training import distributed

    from sharewise.training.signals import RunStopped

    ctx = distributed.init_from_env()
    try:
        status = _cmd_run(args, ctx)
    except RunStopped:  # every rank stopped at the same agreed step
        distributed.shutdown()
        raise
    except BaseException:
        distributed.shutdown(clean=False)
        raise
    distributed.shutdown()
    return status


def _cmd_run(args: argparse.Namespace, ctx: Any) -> int:
    from sharewise.runner import resume, run

    flags = dict(progress=True, tensorboard=args.tensorboard, dist=ctx)
    if args.resume is not None:
        given = [name for name, value in (("a config file", args.config), ("--scheme", args.scheme),
                                          ("--seed", args.seed), ("--out", args.out), ("--steps", args.steps),
                                          ("overrides", args.overrides), ("--overwrite", args.overwrite))
                 if value is not None and value is not False and value != []]
        if given:
            raise ConfigError(f"--resume continues {args.resume} with its own config.yaml, so it takes no "
                              f"{', '.join(given)}; start a new run to change the configuration")
        summary = resume(args.resume, data_dir=args.data_dir, **flags)
        if summary is not None:  # rank 0 (or a single process)
            _finish(args, summary, args.resume)
        return 0
    _positive(args.steps, "--steps", "training steps")
    if args.config is None and not args.overrides:
        raise ConfigError("run needs a config file (e.g. configs/demo/demo.yaml) or --resume DIR")
    data = load_config(args.config, args.overrides, scheme=args.scheme, seed=args.seed,
                       **{"train.steps": args.steps})
    cfg = parse_config(data)  # the one parse: the runner takes the RunConfig
    out = args.out or f"runs/{cfg.name}/{cfg.scheme}/seed{cfg.seed}"
    summary = run(cfg, out, data_dir=args.data_dir, overwrite=args.overwrite, **flags)
    if summary is not None:  # rank 0 (or a single process)
        _finish(args, summary, out)
    return 0


def _finish(args: argparse.Namespace, summary: dict[str, Any], out: str | Path) -> None:
    """After a run: the plots and the report when asked for (steps on the finished directory)."""
    if args.plots and not args.no_plots:
        from sharewise.reporting.run_plots import plot_run

        plot_run(out)
    if args.report and not args.no_report:
        from sharewise.reporting.report import write_report

        write_report([Path(out)], out)
    _print_result(summary, out)


def cmd_compare(args: argparse.Namespace) -> int:
    schemes, seeds = _schemes(args.schemes), _seeds(args.seeds)
    _positive(args.steps, "--steps", "training steps")
    _positive(args.jobs, "--jobs", "worker processes")
    data = load_config(args.config, args.overrides, **{"train.steps": args.steps})
    name = parse_config(apply_overrides(data, [f"scheme={schemes[0]}"])).name  # checked: a plain folder name
    out = Path(args.out or f"runs/{name}/compare")
    from sharewise.pipelines.compare import compare

    compare(data, schemes, seeds, out, args.data_dir, jobs=args.jobs, report=not args.no_report,
            overwrite=args.overwrite, command=_command_line(args))
    return 0


def _command_line(args: argparse.Namespace) -> str:
    import shlex

    return "sharewise " + shlex.join(getattr(args, "argv", []))


def cmd_report(args: argparse.Namespace) -> int:
    from sharewise.reporting.report import write_report
    from sharewise.rundir import is_sharewise_dir, read_summary

    dirs = [Path(d) for d in args.run_dirs]
    for d in dirs:
        read_summary(d)  # every directory a finished run, before anything is written
    out = Path(args.out) if args.out else (dirs[0] if len(dirs) == 1 else Path("."))
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file, not a folder; pass a folder for report.html and report.md")
    mine = [n for n in ("report.html", "report.md") if (out / n).exists()]
    if mine and not is_sharewise_dir(out):
        raise ConfigError(f"{str(out)!r} already holds {' and '.join(mine)}, and sharewise did not create that "
                          f"folder, so they are not replaced; pass another --out")
    html_path, md_path = write_report(dirs, out)
    print(f"written: {html_path}, {md_path}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from sharewise.builders import build_model, uses_components
    from sharewise.data.tasksets import available_tasksets
    from sharewise.sharing import available_schemes

    data = load_config(args.config, args.overrides) if args.config else {}
    if args.list or not args.config:
        from sharewise.registry import import_modules

        import_modules(data["imports"] if isinstance(data.get("imports"), list) else [])  # a config's own schemes
        print("schemes:   " + ", ".join(available_schemes()))
        print("task sets: " + ", ".join(available_tasksets()))
        if not args.config:
            return 0
    cfg = parse_config(data)
    built = ""
    if uses_components(cfg):  # user modules: import, build and probe them on the tasks' input shape
        from sharewise.data.tasksets import build_tasks

        tasks = build_tasks(cfg.tasks.builder, data_dir=args.data_dir, seed=cfg.seed, options=cfg.tasks.options)
        model = build_model(cfg, tasks)
        built = f", user modules built and probed: {sum(p.numel() for p in model.parameters())} parameters"
    print(f"{args.config}: OK (scheme {cfg.scheme}, task set {cfg.tasks.builder}, {cfg.train.steps} steps{built})")
    return 0


def demo_config(steps: int) -> dict[str, Any]:
    """The demo's configuration (see ``sharewise.pipelines.demo``)."""
    from sharewise.pipelines.demo import demo_config as config

    return config(steps)


def cmd_demo(args: argparse.Namespace) -> int:
    from sharewise.pipelines.demo import SCHEMES, run_demo

    started = time.perf_counter()
    out = Path(args.out)
    _positive(args.steps, "--steps", "training steps")
    _positive(args.jobs, "--jobs", "worker processes")
    seeds = _seeds(args.seeds)
    steps = args.steps if args.steps is not None else 300
    print(f"sharewise demo: 9 generated regression tasks in 3 planted families; {', '.join(SCHEMES)} and the "
          f"branched network RSA builds, seeds {args.seeds}, {steps} steps each -> {out}")
    jobs = max(1, min(args.jobs, os.cpu_count() or 1))  # small models: one thread per worker is fastest
    result = run_demo(out, seeds, steps, jobs, args.overwrite, _command_line(args))
    print(f"demo finished in {time.perf_counter() - started:.0f} s; the report is {result['report']}")
    return 0
