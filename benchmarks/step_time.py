"""Seconds per training step of a config's real tasks under several schemes (to size long runs).

    python benchmarks/step_time.py CONFIG --schemes parallel,soft_ordering [--steps 10] [--rounds 2]
        [--precision fp32,bf16] [--padding built,eager] [--memory-format channels_last,contiguous]
        [--data-dir ../shared/data] [key=value ...]

The tasks are loaded once (the config's own task set, with the overrides applied); each
(scheme, precision) gets its model and ``Trainer`` built as a run builds them, and its
``Trainer.train_step`` (sampler, forward, loss, backward, optimiser; alternating mode: one update
per task) is timed in blocks of ``--steps`` steps. Blocks alternate between the setups round by
round, so a change of machine load hits every setup alike; the median block is reported with
the projected time of the config's ``train.steps`` (training only: evaluation and checkpoints come
on top) and the load average. ``--padding built,eager`` also times each setup with a channel-padded
image padded eagerly (``ChannelPad(lazy=False)``), to show what feeding the conv core the unpadded
image saves (``built`` is what a run uses). ``--memory-format channels_last,contiguous`` times the
conv core (``ConvPoolLayer``) in both memory layouts (``channels_last`` is what a run uses). One
thread unless the config says otherwise. On a loaded machine the ratios between setups mean more
than the absolute numbers.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from sharewise.builders import build_model
from sharewise.components.conv import ConvPoolLayer
from sharewise.config import apply_overrides, parse_config, read_yaml
from sharewise.data.tasksets import build_tasks
from sharewise.tasks.spec import check_task_list
from sharewise.training.trainer import Trainer
from sharewise.training.allocator import keep_freed_memory

from _timing import interleaved_seconds  # benchmarks/ (the script's own folder)


def load_average() -> str:
    path = Path("/proc/loadavg")
    return path.read_text().split()[0] if path.exists() else "n/a"


def setup_config(data: dict[str, Any], scheme: str, precision: str) -> dict[str, Any]:
    """The config under ``scheme`` and ``precision`` (scheme options kept only for the config's own scheme)."""
    out = apply_overrides(data, [f"scheme={scheme}", f"train.precision={precision}"])
    if scheme != data.get("scheme"):
        out.pop("scheme_options", None)
    return out


def make_step(data: dict[str, Any], tasks: list[Any], device: torch.device, padding: str = "built",
              layout: str = "channels_last") -> Any:
    cfg = parse_config(data)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, tasks).to(device)
    if padding == "eager" and hasattr(model.encoders, "lazy"):
        model.encoders.lazy = False
    trainer = Trainer(cfg, model, tasks)
    counter = iter(range(1, 10**9))

    def step() -> None:
        ConvPoolLayer.channels_last = layout == "channels_last"  # a class attribute: set per setup
        trainer.train_step(next(counter))
        if device.type == "cuda":
            torch.cuda.synchronize()

    return step


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--schemes", required=True, help="comma-separated scheme names")
    ap.add_argument("--precision", default="fp32", help="comma-separated: fp32, bf16")
    ap.add_argument("--padding", default="built", help="comma-separated: built, eager (ChannelPad padding)")
    ap.add_argument("--memory-format", default="channels_last",
                    help="comma-separated: channels_last, contiguous (the conv core's layout)")
    ap.add_argument("--steps", type=int, default=5, help="steps per timed block")
    ap.add_argument("--rounds", type=int, default=2, help="timed blocks per setup (after one warm-up step)")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("overrides", nargs="*", metavar="key=value")
    args = ap.parse_intermixed_args(argv)  # key=value overrides may follow the options
    if set(args.padding.split(",")) - {"built", "eager"}:
        ap.error(f"--padding takes built and/or eager, got {args.padding!r}")
    if set(args.memory_format.split(",")) - {"channels_last", "contiguous"}:
        ap.error(f"--memory-format takes channels_last and/or contiguous, got {args.memory_format!r}")
    data = apply_overrides(read_yaml(args.config), args.overrides)
    base = parse_config(data)
    torch.set_num_threads(base.train.threads or 1)
    allocator = keep_freed_memory()  # as a run's process
    device = torch.device(args.device)
    t0 = time.perf_counter()
    tasks = check_task_list(build_tasks(base.tasks.builder, data_dir=args.data_dir, seed=base.seed,
                                        options=base.tasks.options), base.tasks.builder)
    print(f"{args.config}: {len(tasks)} tasks loaded in {time.perf_counter() - t0:.1f} s; "
          f"{torch.get_num_threads()} thread(s); device {device}; allocator {allocator}; "
          f"load average {load_average()}", flush=True)
    setups = {(s, p, pad, lay): make_step(setup_config(data, s, p), tasks, device, pad, lay)
              for s in args.schemes.split(",") for p in args.precision.split(",") for pad in args.padding.split(",")
              for lay in args.memory_format.split(",")}
    samples = interleaved_seconds(setups, args.rounds, args.steps)
    rows = []
    for (scheme, precision, padding, layout), values in samples.items():
        per_step = statistics.median(values)
        rows.append({"scheme": scheme, "precision": precision, "padding": padding, "layout": layout,
                     "s_per_step": per_step, "projected_s": per_step * base.train.steps})
        blocks = [round(v, 4) for v in values]
        print(f"{scheme:<22} {precision} {padding:<5} {layout:<13}: {per_step:.4f} s/step (blocks {blocks}); "
              f"{base.train.steps} steps ~ {per_step * base.train.steps / 60:.1f} min of training "
              f"(load {load_average()})", flush=True)
    return rows


if __name__ == "__main__":
    main()
