"""Run a (scheme, seed) grid, sequentially or in worker processes, and aggregate it.

Every cell is a run directory ``out/<scheme>/seed<N>``; a cell with a ``summary.json`` is finished
and is reused, and a cell stopped mid-run (a checkpoint with the same resolved config) is resumed
exactly, so re-running the same command resumes the sweep. With ``jobs > 1`` cells run in
that many spawned worker processes, each limited to ``cores // jobs`` torch threads so the
machine is not oversubscribed. A failing cell is reported and does not stop the others; the
comparison is written over the cells that finished. The run directories are the only shared
state, so the same grid can be spread over a cluster (one job per cell) and aggregated afterwards
by re-running the command with the cells already present.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sharewise.config import apply_overrides, parse_config
from sharewise.summary import headline


@dataclass
class CellResult:
    scheme: str
    seed: int
    path: Path
    ok: bool
    message: str
    seconds: float
    reused: bool = False


def _run_cell(cfg: dict[str, Any], cell: str, data_dir: str | None, threads: int | None,
              progress: bool) -> tuple[bool, str, float]:
    """Worker entry point (top level so spawned processes can import it)."""
    import torch

    from sharewise.config import config_to_dict, parse_config
    from sharewise.errors import SharewiseError
    from sharewise.runner import resume, run
    from sharewise.training.checkpoint import CHECKPOINT_NAME
    from sharewise.training.signals import RunStopped

    if threads:
        torch.set_num_threads(threads)
    started = time.perf_counter()
    path = Path(cell)
    try:
        if (path / CHECKPOINT_NAME).exists() and _same_config(path, config_to_dict(parse_config(cfg))):
            summary = resume(path, data_dir=data_dir, progress=progress)  # a stopped cell continues exactly
        else:
            summary = run(cfg, cell, data_dir=data_dir, overwrite=True, progress=progress)
    except RunStopped as stop:
        return False, f"stopped: {stop}", time.perf_counter() - started
    except SharewiseError as err:
        return False, str(err), time.perf_counter() - started
    except Exception:  # a crashed cell must not take the sweep down; its traceback is reported
        return False, traceback.format_exc(limit=6), time.perf_counter() - started
    return True, headline(summary), time.perf_counter() - started


def _same_config(cell: Path, resolved: dict[str, Any]) -> bool:
    import yaml

    try:
        return yaml.safe_load((cell / "config.yaml").read_text()) == resolved
    except (OSError, yaml.YAMLError):
        return False


def run_grid(data: dict[str, Any], schemes: list[str], seeds: list[int], out: Path, data_dir: str | None,
             jobs: int = 1, on_result: Callable[[CellResult], None] | None = None) -> list[CellResult]:
    """Run every unfinished cell; returns one CellResult per cell (finished ones marked reused)."""
    for scheme in schemes:  # validate every cell before any training
        parse_config(apply_overrides(data, [f"scheme={scheme}"]))
    results: list[CellResult] = []
    todo: list[tuple[str, int, Path, dict[str, Any]]] = []
    for scheme in schemes:
        for seed in seeds:
            cell = out / scheme / f"seed{seed}"
            if (cell / "summary.json").exists():
                res = CellResult(scheme, seed, cell, True, "finished earlier (reused)", 0.0, reused=True)
                results.append(res)
                if on_result:
                    on_result(res)
            else:
                cfg = apply_overrides(data, [f"scheme={scheme}", f"seed={seed}"])
                if jobs > 1:  # the worker's thread count is set by the sweep, not the config
                    cfg = apply_overrides(cfg, ["train.threads=null"])
                todo.append((scheme, seed, cell, cfg))
    if jobs <= 1:
        for scheme, seed, cell, cfg in todo:
            ok, msg, secs = _run_cell(cfg, str(cell), data_dir, None, progress=True)
            results.append(CellResult(scheme, seed, cell, ok, msg, secs))
            if on_result:
                on_result(results[-1])
        return results
    threads = max(1, (os.cpu_count() or 1) // jobs)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        futures = {pool.submit(_run_cell, cfg, str(cell), data_dir, threads, False): (scheme, seed, cell)
                   for scheme, seed, cell, cfg in todo}
        for fut in as_completed(futures):
            scheme, seed, cell = futures[fut]
            try:
                ok, msg, secs = fut.result()
            except Exception as err:  # the worker process itself died (killed, out of memory)
                ok, msg, secs = False, f"worker process failed: {err!r}", 0.0
            results.append(CellResult(scheme, seed, cell, ok, msg, secs))
            if on_result:
                on_result(results[-1])
    return results
