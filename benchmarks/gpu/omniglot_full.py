"""Full-size Omniglot-50 soft ordering and Omniglot-20 Gumbel-Matrix on one GPU inside a time budget.

    python3 benchmarks/gpu/omniglot_full.py --data-dir DATA --out OUT [--budget-s 480] [--seeds 0]
    python3 benchmarks/gpu/omniglot_full.py --tiny --out OUT       # CPU, < 1 minute: the same path at toy size

What runs (the shipped configs at the papers' size, 105x105 images, on the default device: CUDA
when torch sees a GPU):

1. ``configs/omniglot50/soft_ordering.yaml`` (soft-ordering paper Sec. 4.3, 10 % test split) at
   the paper's 5000 steps, schemes in priority order soft_ordering, parallel, single_task,
   permuted, soft_ordering_uniform: each one that fits the time left for this part.
2. ``configs/gumbel/omniglot20.yaml`` (Gumbel-Matrix paper Sec. V-B): gumbel_matrix and
   shared_bottom, both for the same number of steps: as many as fit the rest of the budget (at
   most the config's 20,000), stated in the results as the reduction it is.

How it fits: a calibration first loads each config's tasks once and times a few training steps
of every scheme on the device (``benchmarks/step_time.py``'s step: sampler, forward, loss,
backward, optimiser); the plan then gives Omniglot-50 about 55 % of the time left and the rest to
Omniglot-20, counting an evaluation overhead. Each run is what ``sharewise run`` does, in this
process (each task set is loaded once; run directories under ``--work``), under one deadline: at
the budget's end the run in progress stops after its step with a checkpoint (``sharewise run
--resume DIR`` continues it) and no further run starts.

Written to ``--out`` (at most four files, for the device tool's ``$OUT``): ``results.md`` (the
plan with measured and actual times, and ``sharewise.reporting.headline``'s tables and learned
structure per experiment), ``plan.json``, ``log.txt`` (every run's output) and ``runs.tar.gz`` (the
run directories without checkpoints: ``tar xzf`` it and run ``benchmarks/repro_headline.py`` on
them). The data (the two Omniglot zips, 14 MB) must travel to the device machine, which sees only
the repository: copy them into an ignored folder and carry it. From the repository root::

    mkdir -p gpu_data/omniglot && cp ../shared/data/omniglot/images_*.zip gpu_data/omniglot/
    echo /gpu_data/ >> .git/info/exclude
    # the device tool's run, with carry=["gpu_data"] and timeout_s=600:
    PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src python3 benchmarks/gpu/omniglot_full.py --data-dir gpu_data --out $OUT

cuDNN autotuning is on (``torch.backends.cudnn.benchmark``); convolutions use TF32 as PyTorch
does by default on CUDA; ``train.precision`` stays the configs' fp32 (bf16's accuracy is not
measured).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

O50 = "configs/omniglot50/soft_ordering.yaml"
O20 = "configs/gumbel/omniglot20.yaml"
O50_SCHEMES = ("soft_ordering", "parallel", "single_task", "permuted", "soft_ordering_uniform")
O20_SCHEMES = ("gumbel_matrix", "shared_bottom")
O20_BASELINE = ["scheme_options={network: omniglot20}"]  # shared_bottom takes no Gumbel options
# --tiny: the same configs and path at toy size (2 alphabets each, small images, a few steps) on the CPU.
TINY = {
    O50: ["tasks.options.n_alphabets=2", "tasks.options.image_size=16", "train.eval_batch_size=512"],
    O20: ["tasks.options.n_alphabets=2", "tasks.options.image_size=14", "train.eval_batch_size=512",
          "scheme_options.network_options={channels: 4, n_layers: 2, strided_layers: [0, 1], groups: 2}"],
}
TINY_BASELINE = ["scheme_options={network: omniglot20, network_options: {channels: 4, n_layers: 2, "
                 "strided_layers: [0, 1], groups: 2}}"]
EVAL_OVERHEAD = 1.25  # validation + test every eval_every steps and the final pass over the training split


@dataclass
class Job:
    experiment: str  # omniglot50 / omniglot20
    config: str
    scheme: str
    seed: int
    steps: int
    overrides: list[str] = field(default_factory=list)
    s_per_step: float = 0.0
    estimate_s: float = 0.0
    wall_s: float | None = None
    status: str = "planned"


def calibrate(config: str, schemes: tuple[str, ...], overrides: list[str], data_dir: str | None,
              steps: int, baseline: list[str]) -> tuple[float, dict[str, float]]:
    """(seconds to load the tasks, scheme -> seconds per training step on the default device)."""
    import torch

    from sharewise.config import apply_overrides, parse_config, read_yaml
    from sharewise.runner import build_tasks  # cached by cache_tasks(): the runs reuse these tasks
    from sharewise.tasks.spec import check_task_list
    from sharewise.training.distributed import default_device
    from step_time import make_step, setup_config

    data = apply_overrides(read_yaml(ROOT / config), overrides)
    base = parse_config(data)
    t0 = time.perf_counter()
    tasks = check_task_list(build_tasks(base.tasks.builder, data_dir=data_dir, seed=base.seed,
                                        options=base.tasks.options), base.tasks.builder)
    load_s = time.perf_counter() - t0
    device = default_device()
    out = {}
    for scheme in schemes:
        cfg = setup_config(data, scheme, base.train.precision)
        if scheme == "shared_bottom":
            cfg = apply_overrides(cfg, baseline)
        try:
            step = make_step(cfg, tasks, device)
            step()  # warm-up: cuDNN autotuning, optimiser state
            t = time.perf_counter()
            for _ in range(steps):
                step()
            out[scheme] = (time.perf_counter() - t) / steps
            del step
        except Exception as err:  # noqa: BLE001 - one scheme that cannot run (e.g. out of memory) is left out
            out[scheme] = math.inf
            print(f"calibration {config} {scheme}: FAILED ({type(err).__name__}: {err}); not planned", flush=True)
            continue
        print(f"calibration {config} {scheme}: {out[scheme]:.4f} s/step on {device} (tasks loaded in {load_s:.1f} s)",
              flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return load_s, out


def plan(o50: tuple[float, dict[str, float]], o20: tuple[float, dict[str, float]], left_s: float, seeds: list[int],
         o50_steps: int, o20_max_steps: int, o50_over: list[str], o20_over: list[str], o20_base: list[str],
         fixed_s: float) -> list[Job]:
    """Omniglot-50 runs at their full length in priority order within ~55 % of ``left_s``; the rest
    to Omniglot-20, both schemes the same number of steps (a multiple of 10, eval every tenth)."""
    jobs: list[Job] = []
    rate50 = o50[1]
    share50 = 0.55 * left_s
    for seed in seeds:
        for scheme in O50_SCHEMES:
            cost = fixed_s + EVAL_OVERHEAD * o50_steps * rate50[scheme]
            if cost <= share50:
                share50 -= cost
                jobs.append(Job("omniglot50", O50, scheme, seed, o50_steps,
                                o50_over + [f"train.eval_every={max(2, o50_steps // 20)}"], rate50[scheme], cost))
    left20 = left_s - sum(j.estimate_s for j in jobs)
    rate20 = o20[1]
    per_run = left20 / (len(O20_SCHEMES) * len(seeds)) - fixed_s
    slowest = max(rate20.values())
    steps = min(o20_max_steps, int(per_run / (EVAL_OVERHEAD * slowest))) if per_run > 0 and slowest < math.inf else 0
    steps = steps // 10 * 10 if steps >= 100 else steps
    if steps >= min(o20_max_steps, 50):
        for seed in seeds:
            for scheme in O20_SCHEMES:
                over = o20_over + [f"train.eval_every={max(2, steps // 10)}"]
                if scheme == "shared_bottom":
                    over += o20_base
                jobs.append(Job("omniglot20", O20, scheme, seed, steps, over, rate20[scheme],
                                fixed_s + EVAL_OVERHEAD * steps * rate20[scheme]))
    return jobs


@contextmanager
def cached_tasks() -> Iterator[None]:
    """Load each task set once for the calibration and all runs of this process: the runner's
    ``build_tasks`` answers repeated calls with the same arguments from memory (runs only read the
    tensors; loading Omniglot-50 at 105x105 takes ~10-15 s, once per run otherwise)."""
    import sharewise.runner as runner

    loaded: dict[str, Any] = {}
    build = runner.build_tasks

    def cached(builder: str, **kwargs: Any) -> Any:
        key = json.dumps([builder, kwargs], sort_keys=True, default=str)
        if key not in loaded:
            loaded[key] = build(builder, **kwargs)
        return loaded[key]

    runner.build_tasks = cached  # type: ignore[assignment]
    try:
        yield
    finally:
        runner.build_tasks = build  # type: ignore[assignment]


def run_job(job: Job, work: Path, data_dir: str | None, stop: Any, log: Any) -> None:
    """One ``sharewise run`` in this process (the same as the command line's); a signal (the
    budget's alarm) stops it after the current step with a checkpoint."""
    from sharewise.cli.commands import load_config
    from sharewise.config import parse_config
    from sharewise.runner import run
    from sharewise.training.signals import RunStopped

    out = work / job.experiment / job.scheme / f"seed{job.seed}"
    if stop.signum is not None:
        job.status = "skipped: the budget ran out"
        return
    cfg = parse_config(load_config(str(ROOT / job.config), job.overrides, scheme=job.scheme, seed=job.seed,
                                   **{"train.steps": job.steps}))
    log.write(f"sharewise run {job.config} --scheme {job.scheme} --seed {job.seed} --steps {job.steps} "
              f"--out {out} {' '.join(repr(o) for o in job.overrides)}\n")
    t0 = time.time()
    try:
        summary = run(cfg, out, data_dir=data_dir, overwrite=True)
        job.status = "done"
        log.write(f"  done: mean test error {summary.get('mean_test_error')}, wall {summary.get('wall_time_s')} s\n")
    except RunStopped as stopped:
        job.status = f"stopped at the budget's end: {stopped}"
    except Exception as err:  # noqa: BLE001 - a failing run is reported; the others still run
        job.status = f"failed: {type(err).__name__}: {err}"
    job.wall_s = time.time() - t0
    log.flush()
    print(f"{job.experiment} {job.scheme} seed {job.seed}, {job.steps} steps: {job.status} in {job.wall_s:.0f} s "
          f"(planned {job.estimate_s:.0f} s)", flush=True)


def results_markdown(jobs: list[Job], work: Path, calib: dict[str, Any]) -> str:
    from sharewise.errors import SharewiseError
    from sharewise.reporting.headline import headline_markdown, load_runs

    lines = ["# Omniglot at full size on the GPU (benchmarks/gpu/omniglot_full.py)", "",
             f"Calibration: {json.dumps(calib)}", "",
             "| experiment | scheme | seed | steps | s/step (calibration) | planned s | wall s | status |",
             "|---|---|---|---|---|---|---|---|"]
    for j in jobs:
        wall = f"{j.wall_s:.0f}" if j.wall_s is not None else "-"
        lines.append(f"| {j.experiment} | {j.scheme} | {j.seed} | {j.steps} | {j.s_per_step:.4f} | {j.estimate_s:.0f} | "
                     f"{wall} | {j.status} |")
    for exp in dict.fromkeys(j.experiment for j in jobs):
        try:
            lines += ["", headline_markdown(load_runs(work / exp), title=exp)]
        except SharewiseError as err:
            lines += ["", f"### {exp}", "", f"no finished run: {err}"]
    return "\n".join(lines) + "\n"


def pack(work: Path, target: Path) -> None:
    """The run directories without checkpoints (checkpoint.pt, best.pt)."""
    with tarfile.open(target, "w:gz") as tar:
        for p in sorted(work.rglob("*")):
            if p.is_file() and p.name not in ("checkpoint.pt", "best.pt", "run.lock"):
                tar.add(p, arcname=str(p.relative_to(work)))


def _num(v: float) -> float | str:
    return round(v, 4) if math.isfinite(v) else "failed"


def calibrate_plan_and_run(args: argparse.Namespace, out: Path, work: Path, start: float, deadline: float,
                           seeds: list[int]) -> tuple[list[Job], dict[str, Any]]:
    from sharewise.training.signals import StopRequest

    o50_over, o20_over = (TINY[O50], TINY[O20]) if args.tiny else ([], [])
    o50_over, o20_over = o50_over + args.o50_override, o20_over + args.o20_override
    base = TINY_BASELINE if args.tiny else O20_BASELINE
    o50 = calibrate(O50, O50_SCHEMES, o50_over, args.data_dir, 1 if args.tiny else 3, base)
    o20 = calibrate(O20, O20_SCHEMES, o20_over, args.data_dir, 1 if args.tiny else 2, base)
    calib = {"omniglot50": {"load_s": round(o50[0], 1), **{k: _num(v) for k, v in o50[1].items()}},
             "omniglot20": {"load_s": round(o20[0], 1), **{k: _num(v) for k, v in o20[1].items()}},
             "calibration_s": round(time.time() - start, 1)}
    left = deadline - time.time() - 20  # packing and the results
    jobs = plan(o50, o20, left, seeds, 4 if args.tiny else 5000, 4 if args.tiny else 20000, o50_over, o20_over, base,
                fixed_s=8.0)
    for j in jobs:
        print(f"plan: {j.experiment} {j.scheme} seed {j.seed}: {j.steps} steps, ~{j.estimate_s:.0f} s", flush=True)
    # At the deadline the alarm sends this process SIGTERM: the run in progress checkpoints and
    # stops after its current step, and the outer request keeps any further run from starting.
    previous = signal.signal(signal.SIGALRM, lambda *_: os.kill(os.getpid(), signal.SIGTERM))
    signal.setitimer(signal.ITIMER_REAL, max(1.0, deadline - 15 - time.time()))
    try:
        with open(out / "log.txt", "w") as log, StopRequest() as stop:
            for job in jobs:
                run_job(job, work, args.data_dir, stop, log)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return jobs, calib


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.environ.get("OUT", "runs/gpu_omniglot"), help="results (default $OUT)")
    ap.add_argument("--work", default=None, help="run directories (default /tmp/omniglot_full, --tiny: OUT/../work)")
    ap.add_argument("--data-dir", default=None, help="folder with omniglot/images_*.zip (default $SHAREWISE_DATA_DIR)")
    ap.add_argument("--budget-s", type=float, default=480.0,
                    help="wall-clock budget of the whole script (the device tool allows 600 s a command)")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds")
    ap.add_argument("--o50-override", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for every Omniglot-50 run (repeatable), e.g. tasks.options.counts=[14,2,4]")
    ap.add_argument("--o20-override", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for both Omniglot-20 runs (repeatable), e.g. train.task_lr=0.002")
    ap.add_argument("--tiny", action="store_true", help="toy size on the CPU: checks the whole path in < 1 minute")
    args = ap.parse_args(argv)
    start = time.time()
    deadline = start + args.budget_s
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work) if args.work else (out.parent / "work" if args.tiny else Path("/tmp/omniglot_full"))
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.tiny:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the CPU, also on a GPU machine (set before torch sees a GPU)
    else:
        import torch

        torch.backends.cudnn.benchmark = True  # fixed shapes per run: autotune each convolution once
    with cached_tasks():
        jobs, calib = calibrate_plan_and_run(args, out, work, start, deadline, seeds)
    (out / "plan.json").write_text(json.dumps({"calibration": calib, "jobs": [asdict(j) for j in jobs],
                                               "budget_s": args.budget_s, "wall_s": time.time() - start}, indent=1))
    (out / "results.md").write_text(results_markdown(jobs, work, calib))
    pack(work, out / "runs.tar.gz")
    print((out / "results.md").read_text(), flush=True)
    print(f"total {time.time() - start:.0f} s of a {args.budget_s:.0f} s budget", flush=True)
    return 0 if jobs and all(j.status == "done" for j in jobs) else 1


if __name__ == "__main__":
    sys.exit(main())
