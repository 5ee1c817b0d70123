"""Run a (scheme, seed) grid, sequentially or in worker processes, and aggregate it.

Every cell is a run directory ``out/<scheme>/seed<N>``; a cell with a ``summary.json`` is finished
and is reused, and a cell stopped mid-run (a checkpoint) is resumed exactly, so re-running the same
command resumes the sweep. Both only when the cell's resolved config and the sharewise version
that wrote it equal this grid's (``train.threads`` aside: it changes speed, not results);
otherwise the grid refuses before any work, naming what differs, since reusing the cell would
report a stale result (``overwrite=True`` re-runs such cells instead). With ``jobs > 1`` cells run in
that many spawned worker processes, each limited to ``cores // jobs`` torch threads so the
machine is not oversubscribed. SIGINT / SIGTERM stop the grid: running cells write their
checkpoint, no further cell starts, and :class:`~sharewise.training.signals.GridStopped` names the
command that continues. Workers watch their parent and stop the same way (then exit) when it dies,
even by SIGKILL, so no worker outlives the grid. A failing cell is reported and does not stop the others; the
comparison is written over the cells that finished. The run directories are the only shared
state, so the same grid can be spread over a cluster (one job per cell) and aggregated afterwards
by re-running the command with the cells already present.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sharewise.config import apply_overrides, config_to_dict, parse_config
from sharewise.errors import ConfigError
from sharewise.summary import headline
from sharewise.training.signals import GridStopped, StopRequest


@dataclass
class CellResult:
    scheme: str
    seed: int
    path: Path
    ok: bool
    message: str
    seconds: float
    reused: bool = False
    stopped: bool = False


_WORKER_STOP: StopRequest | None = None  # a worker process's own stop request (see _worker_init)


def _worker_init(parent: int) -> None:
    """In each worker: take SIGINT/SIGTERM as stop requests, and stop when the parent is gone.

    A worker whose parent died (any signal, SIGKILL included) is re-parented; the watchdog then
    sends itself SIGTERM (the running cell checkpoints and stops) and exits for good after a grace
    period, so no worker is left behind.
    """
    global _WORKER_STOP
    _WORKER_STOP = StopRequest().__enter__()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.25)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30.0)
        os._exit(128 + signal.SIGTERM)

    threading.Thread(target=watch, name="sharewise-parent-watch", daemon=True).start()


def _run_cell(cfg: dict[str, Any], cell: str, data_dir: str | None, threads: int | None,
              progress: bool, resume_cell: bool = False) -> tuple[bool, str, float, bool]:
    """Worker entry point (top level so spawned processes can import it): (ok, message, seconds, stopped)."""
    import torch

    from sharewise.errors import SharewiseError
    from sharewise.runner import resume, run
    from sharewise.training.signals import RunStopped

    if _WORKER_STOP is not None and _WORKER_STOP.signum is not None:
        return False, "not started: the grid is stopping", 0.0, True
    if threads:
        torch.set_num_threads(threads)
    started = time.perf_counter()
    try:
        if resume_cell:
            summary = resume(cell, data_dir=data_dir, progress=progress)  # a stopped cell continues exactly
        else:
            summary = run(cfg, cell, data_dir=data_dir, overwrite=True, progress=progress)
    except RunStopped as stop:
        return False, f"stopped: {stop}", time.perf_counter() - started, True
    except SharewiseError as err:
        return False, str(err), time.perf_counter() - started, False
    except OSError as err:  # a full disk, a permission problem: the file and the reason
        return False, f"cannot write or read {err.filename or cell}: {err.strerror or err}", \
            time.perf_counter() - started, False
    except Exception:  # a crashed cell must not take the sweep down; its traceback is reported
        return False, traceback.format_exc(limit=6), time.perf_counter() - started, False
    return True, headline(summary), time.perf_counter() - started, False


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix.rstrip("."): d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}{k}.") if isinstance(v, dict) and v else {f"{prefix}{k}": v})
    return out


_IGNORED = {"train.threads"}  # how fast, not what: a grid sets it per worker count


def config_differences(old: Any, new: dict[str, Any]) -> list[str]:
    """``key: old -> new`` for every resolved-config key that differs (train.threads aside)."""
    a, b = _flatten(old if isinstance(old, dict) else {"(config)": old}), _flatten(new)
    keys = sorted((set(a) | set(b)) - _IGNORED)
    missing = object()
    return [f"{k}: {a.get(k, '(absent)')!r} -> {b.get(k, '(absent)')!r}" for k in keys
            if a.get(k, missing) != b.get(k, missing)]


def cell_differences(cell: Path, resolved: dict[str, Any]) -> list[str]:
    """What differs between the cell on disk and the cell asked for (config and sharewise version)."""
    from sharewise import __version__
    from sharewise.config import read_yaml
    from sharewise.readers import read_json

    try:
        diffs = config_differences(read_yaml(cell / "config.yaml"), resolved)
    except ConfigError as err:
        return [f"config.yaml unreadable ({err})"]
    record = cell / ("summary.json" if (cell / "summary.json").exists() else "run.json")
    try:
        version = read_json(record, "run record").get("meta", {}).get("sharewise")
    except Exception as err:  # noqa: BLE001 - any damage means the cell cannot be trusted
        return diffs + [f"{record.name} unreadable ({err})"]
    if version != __version__:
        diffs.append(f"written by sharewise {version} (this is {__version__})")
    return diffs


def _plan(data: dict[str, Any], schemes: list[str], seeds: list[int], out: Path, jobs: int,
          overwrite: bool) -> tuple[list[CellResult], list[tuple[str, int, Path, dict[str, Any], bool]]]:
    """Finished cells to reuse, cells to run ((scheme, seed, dir, config, resume?)); refuses stale cells."""
    from sharewise.training.checkpoint import CHECKPOINT_NAME

    reused: list[CellResult] = []
    todo: list[tuple[str, int, Path, dict[str, Any], bool]] = []
    stale: list[str] = []
    for scheme in schemes:
        for seed in seeds:
            cell = out / scheme / f"seed{seed}"
            cfg = apply_overrides(data, [f"scheme={scheme}", f"seed={seed}"])
            if jobs > 1:  # the worker's thread count is set by the sweep, not the config
                cfg = apply_overrides(cfg, ["train.threads=null"])
            finished, stopped = (cell / "summary.json").exists(), (cell / CHECKPOINT_NAME).exists()
            diffs = cell_differences(cell, config_to_dict(parse_config(cfg))) if finished or stopped else []
            if diffs and not overwrite:
                shown = "; ".join(diffs[:4]) + (f"; and {len(diffs) - 4} more" if len(diffs) > 4 else "")
                stale.append(f"{cell} ({'finished' if finished else 'stopped'}): {shown}")
            elif finished and not diffs:
                reused.append(CellResult(scheme, seed, cell, True, "finished earlier (reused)", 0.0, reused=True))
            else:
                todo.append((scheme, seed, cell, cfg, stopped and not finished and not diffs))
    if stale:
        raise ConfigError(f"{len(stale)} cell(s) in {str(out)!r} were run with another configuration or sharewise "
                          f"version, and reusing them would report stale results: " + " | ".join(stale)
                          + f". Nothing was run. To start fresh, pass another --out (or delete those cells), or "
                            f"pass --overwrite to re-run them")
    return reused, todo


def run_grid(data: dict[str, Any], schemes: list[str], seeds: list[int], out: Path, data_dir: str | None,
             jobs: int = 1, on_result: Callable[[CellResult], None] | None = None, overwrite: bool = False,
             command: str = "the same command") -> list[CellResult]:
    """Run every unfinished cell; returns one CellResult per cell (finished ones marked reused).

    Raises :class:`GridStopped` after SIGINT/SIGTERM (running cells checkpointed, none started).
    """
    from sharewise.rundir import check_output_dir, claim_output_dir

    check_output_dir(out)
    for scheme in schemes:  # validate every cell before any training
        parse_config(apply_overrides(data, [f"scheme={scheme}"]))
    reused, todo = _plan(data, schemes, seeds, out, jobs, overwrite)
    claim_output_dir(out)
    results: list[CellResult] = []

    def record(res: CellResult) -> None:
        results.append(res)
        if on_result:
            on_result(res)

    for res in reused:
        record(res)
    with StopRequest() as stop:
        if jobs <= 1:
            for scheme, seed, cell, cfg, resume_cell in todo:
                if stop.signum is not None:
                    break
                ok, msg, secs, stopped = _run_cell(cfg, str(cell), data_dir, None, True, resume_cell)
                record(CellResult(scheme, seed, cell, ok, msg, secs, stopped=stopped))
        else:
            _run_parallel(todo, data_dir, jobs, stop, record)
    if stop.signum is not None:
        ran = [r for r in results if not r.reused and not (r.stopped and r.seconds == 0)]
        stopped_cells = [f"{r.scheme} seed {r.seed}" for r in ran if r.stopped]
        raise GridStopped(stop.signum, stopped_cells, len(todo) - len(ran), command)
    return results


def _run_parallel(todo: list[tuple[str, int, Path, dict[str, Any], bool]], data_dir: str | None, jobs: int,
                  stop: StopRequest, record: Callable[[CellResult], None]) -> None:
    threads = max(1, (os.cpu_count() or 1) // jobs)
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_worker_init,
                               initargs=(os.getpid(),))
    forwarded = False
    try:
        futures: dict[Future, tuple[str, int, Path]] = {
            pool.submit(_run_cell, cfg, str(cell), data_dir, threads, False, resume_cell): (scheme, seed, cell)
            for scheme, seed, cell, cfg, resume_cell in todo}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            for fut in done:
                scheme, seed, cell = futures[fut]
                if fut.cancelled():
                    continue
                try:
                    ok, msg, secs, stopped = fut.result()
                except Exception as err:  # the worker process itself died (killed, out of memory)
                    ok, msg, secs, stopped = False, f"worker process failed: {err!r}", 0.0, forwarded
                record(CellResult(scheme, seed, cell, ok, msg, secs, stopped=stopped))
            if stop.signum is not None and not forwarded:
                forwarded = True
                for fut in pending:
                    fut.cancel()
                for proc in list(getattr(pool, "_processes", {}).values()):  # running cells checkpoint
                    try:
                        os.kill(proc.pid, signal.SIGTERM)
                    except (ProcessLookupError, TypeError):
                        pass  # the worker already exited: nothing left to stop
                pending = {f for f in pending if not f.cancelled()}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
