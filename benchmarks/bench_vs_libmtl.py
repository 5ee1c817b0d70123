"""sharewise vs LibMTL on one multi-task workload: training loop and whole process, alternating.

    .venv/bin/python benchmarks/bench_vs_libmtl.py [--rounds 3] [--steps 2000] [--encoder channel_pad|dense]

The workload is the one ``../shared/peers/libmtl_hps.py`` runs through LibMTL 1.1.5's own
``Trainer`` with hard parameter sharing (``HPS``) and equal weighting (``EW``), the most used
multi-task library (that script fetches LibMTL from the package registry into a cache folder on
first use and patches it for a CPU): T=10 tasks, each a 2-class problem on 32 uniform features
with its own inputs (6,400 training and 64 test rows), batch 64 per task, Adam lr 1e-3, a test
evaluation every 100 steps, 2000 steps, one thread. The data come from that script's
``workload()``, so both sides train on the same arrays.

sharewise runs it as a user would: ``sharewise run`` of a config (``parallel`` scheme = hard
sharing) with LibMTL's network: the 32 features zero-padded to 64 (``model.encoder.kind:
channel_pad``, no parameters), a shared core of four 64 -> 64 ReLU layers with dropout 0.5, and a
2-way softmax head per task with cross-entropy, in a fresh process that registers the workload
as a task set. The first core layer on zero-padded features is LibMTL's shared 32 -> 64 layer
(the weights on the padded inputs multiply zeros and get no gradient), computed as 64 -> 64: if
anything the comparison is tilted against sharewise. Until session 7 the script gave sharewise a
per-task dense encoder 32 -> 64 in front of the four core layers (one layer per sample more than
LibMTL); ``--encoder dense`` still runs that network.

Each round runs LibMTL then sharewise (alternating, so load from other processes hits both
alike) and records, per side, the training loop's seconds (as each library reports them:
LibMTL's ``Trainer.train`` incl. its per-epoch test evaluation; sharewise's ``wall_time_s``, the
``Trainer.fit`` loop incl. its evaluations and final checkpoint), the whole process's wall
seconds (interpreter start to exit) and its CPU seconds (user + system: on a loaded machine the
steadier measure, as it leaves out waiting for a core). The printed ratios are medians over
rounds of the per-round ratios. sharewise's process keeps freed memory for reuse
(``sharewise.training.allocator``, as the ``sharewise`` command does; ``SHAREWISE_ALLOCATOR=default``
turns it off); ``--libmtl-malloc`` gives LibMTL's process the same glibc settings. One untimed
1-step run of each side comes first, and the timed processes run with Python's bytecode cache on
even where the shell sets PYTHONDONTWRITEBYTECODE (as on this project's machines): a normal
install compiles its sources once, not per process.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT.parent / "shared" / "peers" / "libmtl_hps.py"


def sharewise_config(steps: int, encoder: str = "channel_pad") -> dict[str, Any]:
    return {
        "name": "vs_libmtl",
        "scheme": "parallel",
        "tasks": {"builder": "libmtl_hps_workload"},
        "model": {"encoder": {"kind": "channel_pad"} if encoder == "channel_pad"
                  else {"kind": "dense", "activation": "relu"},
                  "core": {"kind": "dense", "width": 64, "depth": 4, "dropout": 0.5, "activation": "relu"}},
        "train": {"steps": steps, "batch_size": 64, "lr": 1e-3, "eval_every": 100, "threads": 1,
                  "checkpoint_every": 0},
    }


def load_peer(peer: str) -> Any:
    """The peer script as a module (for its ``workload()`` and ``N``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("libmtl_hps", peer)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def register_workload(module: Any, package: str = "sharewise") -> None:
    """Register the peer's workload as the task set ``libmtl_hps_workload`` of ``package``
    (``sharewise``, or an exported earlier version such as ``ab_libmtl_step.py``'s)."""
    import importlib

    import numpy as np

    register_taskset = importlib.import_module(package + ".data.tasksets").register_taskset
    make_task = importlib.import_module(package + ".data.tasksets._registry").make_task

    @register_taskset("libmtl_hps_workload")
    def build(*, data_dir: str | None = None, seed: int = 0) -> list:
        n, tasks = module.N, []
        for t, (x, y) in enumerate(module.workload()):
            splits = (np.arange(n), np.arange(0), np.arange(n, len(y)))  # train, (no) val, test
            tasks.append(make_task(f"t{t}", "multiclass", 2, x, y, splits, scale=False))
        return tasks


def sharewise_child(steps: int, out: str, peer: str, encoder: str = "channel_pad") -> None:
    """The sharewise side in its own process: register the peer's workload, ``sharewise run``."""
    register_workload(load_peer(peer))

    from sharewise.runner import run
    from sharewise.training.allocator import keep_freed_memory

    keep_freed_memory()  # as the `sharewise` command does at its start

    summary = run(sharewise_config(steps, encoder), out, overwrite=True)
    print(f"sharewise parallel: {steps} steps in {summary['wall_time_s']:.2f} s (training loop, 1 thread(s))")


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(cmd: list[str], pattern: str, extra_env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """(training-loop seconds the process printed, whole-process wall seconds, its CPU seconds).

    CPU seconds (user + system) do not count the time the process waited for a core, so on a
    loaded machine they are the steadier whole-process measure."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}"
           f"{os.environ.get('PYTHONPATH', '')}", **(extra_env or {})}
    # Python's default: imported sources are compiled once and cached as .pyc. Some shells (this
    # project's machines among them) set PYTHONDONTWRITEBYTECODE, which makes every process
    # recompile both libraries' sources (sharewise: 0.23 s); the untimed warm-up run of each side
    # writes the caches, so the timed processes start as on a normal install.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    cpu0, t0 = _cpu_children(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall, cpu = time.perf_counter() - t0, _cpu_children() - cpu0
    match = re.search(pattern, proc.stdout)
    if proc.returncode != 0 or match is None:
        sys.exit(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return float(match.group(1)), wall, cpu


def _load() -> str:
    return Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--peer", default=str(PEER), help="path of libmtl_hps.py")
    ap.add_argument("--encoder", choices=("channel_pad", "dense"), default="channel_pad",
                    help="sharewise's network: LibMTL's (channel_pad, default) or with a per-task dense encoder")
    ap.add_argument("--libmtl-malloc", action="store_true",
                    help="run LibMTL with the glibc settings sharewise makes for itself (MALLOC_*_ variables)")
    ap.add_argument("--sharewise-child", metavar="OUT", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--json", default=None, help="also write the per-round numbers here")
    args = ap.parse_args()
    if args.sharewise_child is not None:
        sharewise_child(args.steps, args.sharewise_child, args.peer, args.encoder)
        return
    if not Path(args.peer).is_file():
        sys.exit(f"the LibMTL runner {args.peer} does not exist; pass --peer PATH")
    peer_env = None
    if args.libmtl_malloc:
        from sharewise.training import allocator

        peer_env = {"MALLOC_TRIM_THRESHOLD_": str(allocator.TRIM_THRESHOLD), "MALLOC_TOP_PAD_": str(allocator.TOP_PAD),
                    "MALLOC_MMAP_THRESHOLD_": str(allocator.MMAP_THRESHOLD)}
    samples: dict[str, list[tuple[float, float, float]]] = {"libmtl": [], "sharewise": []}
    loads = [_load()]
    with tempfile.TemporaryDirectory() as tmp:
        _timed([sys.executable, args.peer, "--steps", "1", "--threads", "1"], r"in ([0-9.]+) s")  # warm-up
        _timed([sys.executable, __file__, "--steps", "1", "--peer", args.peer, "--encoder", args.encoder,
                "--sharewise-child", str(Path(tmp) / "warm")], r"in ([0-9.]+) s")
        for r in range(args.rounds):
            samples["libmtl"].append(_timed([sys.executable, args.peer, "--steps", str(args.steps), "--threads", "1"],
                                            r"in ([0-9.]+) s", peer_env))
            samples["sharewise"].append(_timed([sys.executable, __file__, "--steps", str(args.steps), "--peer",
                                                args.peer, "--encoder", args.encoder,
                                                "--sharewise-child", str(Path(tmp) / "run")],
                                               r"in ([0-9.]+) s"))
            loads.append(_load())
            (lm_loop, lm_proc, lm_cpu), (sw_loop, sw_proc, sw_cpu) = samples["libmtl"][-1], samples["sharewise"][-1]
            print(f"round {r + 1}: LibMTL loop {lm_loop:.2f} s / process {lm_proc:.2f} s (CPU {lm_cpu:.2f} s); "
                  f"sharewise loop {sw_loop:.2f} s / process {sw_proc:.2f} s (CPU {sw_cpu:.2f} s); load {loads[-1]}",
                  flush=True)
    med = {k: [statistics.median(s[i] for s in v) for i in range(3)] for k, v in samples.items()}
    print(f"medians of {args.rounds} rounds, {args.steps} steps: LibMTL {med['libmtl'][0]:.2f} s loop, "
          f"{med['libmtl'][1]:.2f} s process ({med['libmtl'][2]:.2f} s CPU); sharewise {med['sharewise'][0]:.2f} s "
          f"loop, {med['sharewise'][1]:.2f} s process ({med['sharewise'][2]:.2f} s CPU); load average "
          f"{' -> '.join(loads)}")
    ratios = [statistics.median(a[i] / b[i] for a, b in zip(samples["libmtl"], samples["sharewise"])) for i in range(3)]
    print(f"speed-up vs LibMTL: {ratios[0]:.1f}x (loop), {ratios[1]:.1f}x (process)")
    print(f"whole-process CPU time ratio (user + system, not counting waits for a core): {ratios[2]:.1f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"samples": samples, "loads": loads, "steps": args.steps}, indent=1))


if __name__ == "__main__":
    main()
