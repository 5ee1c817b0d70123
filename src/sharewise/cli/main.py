"""The ``sharewise`` command: run, extend, compare, report, validate, demo.

Exit status: 0 on success; 2 for errors the user can fix (config, data, shapes, a non-finite
loss, a locked run directory), printed as one paragraph, nothing half-written left behind (see
``sharewise.runner``); 128 + signal (130 SIGINT, 143 SIGTERM) when a run was stopped by a signal
after writing its checkpoint (the message says how to resume). An unexpected exception is also
printed as one paragraph with exit 2 (``SHAREWISE_DEBUG=1`` shows its traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from sharewise.errors import SharewiseError


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=None, help="folder with the datasets (default: $SHAREWISE_DATA_DIR)")
    p.add_argument("--steps", type=int, default=None, help="override train.steps")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.lr=0.01")


def _add_reporting(p: argparse.ArgumentParser) -> None:
    # Plots and the report cost more than a short run's training (matplotlib), so a run writes
    # them only when asked; `sharewise report DIR` writes them for a finished run at any time.
    p.add_argument("--plots", action="store_true", help="write plots/*.png (learning curves, learned structure)")
    p.add_argument("--report", action="store_true", help="write report.html / report.md (with their figures)")
    # The defaults since plots and the report became opt-in; still accepted so scripts keep working.
    p.add_argument("--no-plots", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--no-report", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--tensorboard", action="store_true",
                   help="also log metrics for TensorBoard (needs the tensorboard package)")


def build_parser() -> argparse.ArgumentParser:
    """Every command sets its handler (``set_defaults(handler=...)``); :func:`main` calls it."""
    from sharewise.cli import adapt, affinity, branch, commands, export, extend

    parser = argparse.ArgumentParser(prog="sharewise", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="train one configuration (or continue one with --resume)")
    p.add_argument("config", nargs="?")
    p.add_argument("--resume", metavar="DIR", default=None,
                   help="continue the stopped or killed run in DIR exactly (uses DIR/config.yaml)")
    p.add_argument("--scheme", default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", default=None, help="run directory (default: runs/<name>/<scheme>/seed<N>)")
    p.add_argument("--overwrite", action="store_true", help="replace a finished or stopped run in --out")
    _add_reporting(p)
    _add_common(p)
    p.set_defaults(handler=commands.cmd_run)

    p = sub.add_parser("compare", help="run every scheme with every seed and compare them")
    p.add_argument("config")
    p.add_argument("--schemes", required=True, help="comma-separated scheme names")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    p.add_argument("--out", default=None)
    p.add_argument("--jobs", type=int, default=1, help="run cells in N worker processes (threads split between them)")
    p.add_argument("--overwrite", action="store_true",
                   help="re-run cells whose stored config or sharewise version differs (default: refuse)")
    p.add_argument("--no-report", action="store_true", help="do not write report.html / report.md")
    _add_common(p)
    p.set_defaults(handler=commands.cmd_compare)

    p = sub.add_parser("report", help="write report.html and report.md for finished runs")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", default=None, help="where to write the report (default: the run directory "
                                                "for one run, the current directory for several)")
    p.set_defaults(handler=commands.cmd_report)

    p = sub.add_parser("validate", help="check a config without training")
    p.add_argument("config", nargs="?")
    p.add_argument("--list", action="store_true", help="list schemes and task sets")
    p.add_argument("--data-dir", default=None,
                   help="where the data lives; a config naming user modules (_component_) is built once on a "
                        "probe of its tasks' input shape, which needs the tasks")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.set_defaults(handler=commands.cmd_validate)

    p = sub.add_parser("demo", help="train every scheme on bundled data and print the comparison")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--jobs", type=int, default=2, help="worker processes (default 2, at most the CPU count)")
    p.add_argument("--overwrite", action="store_true",
                   help="re-run cells whose stored config or sharewise version differs (default: refuse)")
    p.set_defaults(handler=commands.cmd_demo)
    affinity.add_parser(sub), branch.add_parsers(sub), export.add_parser(sub), adapt.add_parser(sub)
    extend.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args, extra = parser.parse_known_args(argv)
    args.argv = argv  # the command as given, for "continue with: ..." messages
    # key=value overrides may come before or after options; anything else is an error.
    bad = [a for a in extra if "=" not in a or a.startswith("-")]
    if bad:
        parser.error(f"unrecognized arguments: {' '.join(bad)}")
    if hasattr(args, "overrides"):
        args.overrides = list(args.overrides) + extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    from sharewise.training.allocator import keep_freed_memory
    from sharewise.training.signals import RunStopped

    keep_freed_memory()  # each step re-allocates what the last one freed: keep it (1.13x, conv soft ordering)
    try:
        return int(args.handler(args) or 0)
    except SharewiseError as err:
        print(f"sharewise {args.command}: error: {err}", file=sys.stderr)
        return 2
    except RunStopped as stopped:
        print(f"sharewise {args.command}: {stopped}", file=sys.stderr)
        return stopped.exit_status
    except KeyboardInterrupt:
        print(f"sharewise {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as err:  # a full disk, a read-only or missing folder, no permission
        where = f" {err.filename!r}" if err.filename else ""
        print(f"sharewise {args.command}: error: cannot write or read{where}: {err.strerror or err}. Files "
              f"already written are complete (results and checkpoints are replaced atomically, so the last "
              f"good checkpoint is intact); free space or fix the permission, then re-run the command "
              f"(a stopped run continues with `sharewise run --resume DIR`)", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - never a traceback for user input; see SHAREWISE_DEBUG
        if os.environ.get("SHAREWISE_DEBUG"):
            raise
        import traceback

        frame = traceback.extract_tb(err.__traceback__)[-1]
        print(f"sharewise {args.command}: error: unexpected {type(err).__name__}: {err} (at "
              f"{Path(frame.filename).name}:{frame.lineno}). The input is probably one sharewise does not check "
              f"yet; please report it, with the traceback printed when SHAREWISE_DEBUG=1 is set", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
