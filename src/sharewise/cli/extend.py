"""``sharewise extend RUN_DIR --steps N --out NEW_DIR``: train a run for more steps, in a new folder."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    from sharewise.cli.main import _add_reporting

    p = sub.add_parser("extend", help="continue a finished or stopped run to more steps, in a new run directory "
                                      "(the source run is left as it is)")
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run to continue (its checkpoint.pt and config.yaml)")
    p.add_argument("--steps", type=int, required=True, help="the new total number of steps (more than trained)")
    p.add_argument("--out", required=True, help="a new or empty folder for the extended run")
    p.add_argument("--data-dir", default=None, help="where the data lives (default: the run's)")
    p.add_argument("--prepare-only", action="store_true",
                   help="write NEW_DIR and stop; train it with `sharewise run --resume NEW_DIR` (e.g. under torchrun)")
    _add_reporting(p)
    p.set_defaults(handler=cmd_extend)


def cmd_extend(args: argparse.Namespace) -> int:
    from sharewise.cli.commands import cmd_run
    from sharewise.errors import ConfigError, SharewiseError
    from sharewise.extension import prepare_extension
    from sharewise.training.checkpoint import CheckpointError

    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        raise ConfigError("sharewise extend prepares the new run directory in one process; run it without "
                          "torchrun with --prepare-only, then `torchrun ... -m sharewise run --resume NEW_DIR`")
    out = prepare_extension(args.run_dir, args.steps, args.out)
    if args.prepare_only:
        print(f"{out}: ready; train it with: sharewise run --resume {out}")
        return 0
    resumed = argparse.Namespace(**{**vars(args), "resume": str(out), "config": None, "scheme": None, "seed": None,
                                    "out": None, "steps": None, "overrides": [], "overwrite": False})
    try:
        return cmd_run(resumed)
    except SharewiseError as err:
        if not _untrained_copy(Path(args.run_dir), out):
            raise
        # Nothing was trained: the folder holds only what prepare_extension copied into it (it was
        # new or empty), so remove it rather than leave a run that cannot be resumed either.
        shutil.rmtree(out)
        why = (f" (the source run {args.run_dir!r} was saved by a version of sharewise whose model this "
               f"version cannot load)" if isinstance(err, CheckpointError) else "")
        raise type(err)(f"{err}{why}. Nothing had been trained, so {str(out)!r} was removed and nothing else "
                        f"was written: fix this and run the same `sharewise extend` again") from None


def _untrained_copy(source: Path, out: Path) -> bool:
    """True when ``out``'s checkpoint is still at the source's step (the extension saved no step)."""
    from sharewise.errors import SharewiseError
    from sharewise.training.checkpoint import CHECKPOINT_NAME, load_checkpoint

    try:
        return load_checkpoint(out / CHECKPOINT_NAME)["step"] == load_checkpoint(source / CHECKPOINT_NAME)["step"]
    except (SharewiseError, OSError, KeyError, TypeError):
        return False  # cannot tell: keep the folder
