"""What makes a folder sharewise's to write, and reading a finished run's files defensively.

sharewise deletes and replaces files in its output folders (``--overwrite``, a re-run grid cell,
a re-written report), so it must never treat a user's folder as its own: an ``--out`` folder is
written only when it does not exist, is empty, or already carries a sharewise mark: the run
lock ``.sharewise.lock`` (every run directory has one), the ``.sharewise`` marker written by
:func:`claim_output_dir` (grids, affinity and branch outputs), or a ``comparison.json`` of an
older grid. Files read back from a run directory (``summary.json``) are checked for the keys the
readers use, so a damaged or foreign file is an error naming it, not a ``KeyError``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sharewise.errors import ConfigError, DataError
from sharewise.training.io import read_json, write_text

MARKER = ".sharewise"
_MARKS = (MARKER, ".sharewise.lock", "comparison.json")


def is_sharewise_dir(path: Path) -> bool:
    """True if ``path`` carries a sharewise mark (itself, or a grid cell ``*/seed*`` below it)."""
    if any((path / m).exists() for m in _MARKS):
        return True
    return any(p.is_dir() for p in path.glob("*/seed*/.sharewise.lock"))


def check_output_dir(out: str | Path, option: str = "--out") -> Path:
    """Refuse an output folder that sharewise did not create and that holds anything.

    Raises :class:`ConfigError` (before anything is written) when ``out`` is a file, or a
    non-empty folder without a sharewise mark.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{option} {str(out)!r} is a file, not a folder; pass a new or empty folder")
    if out.is_dir() and any(out.iterdir()) and not is_sharewise_dir(out):
        shown = sorted(p.name for p in out.iterdir())[:5]
        raise ConfigError(f"{option} {str(out)!r} is a non-empty folder that sharewise did not create (it holds "
                          f"{', '.join(shown)}{', ...' if len(shown) == 5 else ''}); sharewise replaces files in its "
                          f"output folders, so it does not write there. Pass a new or empty folder")
    return out


def claim_output_dir(out: str | Path, option: str = "--out") -> Path:
    """:func:`check_output_dir`, then create the folder and mark it as sharewise's."""
    out = check_output_dir(out, option)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / MARKER).exists():
        write_text(out / MARKER, "This folder is written by sharewise; its files may be replaced.\n")
    return out


def read_summary(run_dir: str | Path) -> dict[str, Any]:
    """``run_dir/summary.json`` of a finished run, with the keys every reader relies on checked."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"{str(run_dir)!r} is not a run directory ({'a file' if run_dir.exists() else 'missing'}); "
                          f"pass the --out folder of a finished run")
    path = run_dir / "summary.json"
    if not path.is_file():
        raise ConfigError(f"{str(run_dir)!r} holds no finished run (summary.json is missing); pass the directory "
                          f"of a finished run, or resume it first")
    summary = read_json(path, "run summary")
    tasks = summary.get("tasks")
    problems = [k for k in ("scheme", "seed") if k not in summary]
    if (not isinstance(tasks, dict) or not tasks
            or not all(isinstance(e, dict) and ("test_error" in e or "test_rmse" in e) for e in tasks.values())):
        problems.append("tasks (a mapping of task name to its test_error or test_rmse)")
    if problems:
        raise DataError(f"{path}: a run summary needs {', '.join(problems)}; the file is damaged or not written "
                        f"by sharewise. Re-run the run to rewrite it")
    return summary


def read_best_state(run_dir: str | Path) -> dict[str, Any]:
    """``run_dir/best.pt``'s model state (``weights_only`` load; anything else an error naming it)."""
    from sharewise.readers import load_torch

    path = Path(run_dir) / "best.pt"
    state = load_torch(path, "best model state")
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise DataError(f"{path}: expected a mapping with the model's state under 'model'; the file is not a "
                        f"sharewise best.pt")
    return state["model"]


def load_best_state(model: Any, run_dir: str | Path) -> None:
    """Load ``run_dir/best.pt`` into ``model``; a state that does not fit is an error naming the file."""
    path = Path(run_dir) / "best.pt"
    try:
        model.load_state_dict(read_best_state(run_dir))
    except (RuntimeError, KeyError, TypeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"{path} does not fit the model of {Path(run_dir) / 'config.yaml'} ({first}); the file was "
                        f"replaced or the run is damaged") from None


def recorded_data_dir(run_dir: str | Path) -> str | None:
    """The ``--data-dir`` a run was started with (its ``run.json``), or None."""
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        return None
    value = read_json(path, "run record").get("data_dir")
    return value if isinstance(value, str) else None
