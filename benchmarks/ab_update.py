"""The 4-MNISTs Gumbel-Matrix alternating update of this tree against an earlier commit, in one process.

    .venv/bin/python benchmarks/ab_update.py --base <commit> [--data-dir ../shared/data] [--rounds 300] [--parts]

The base commit's ``src/sharewise`` is exported (``git archive``) to a temporary folder as the
package ``sharewise_base`` (its imports rewritten), so both versions train side by side: one
trainer each on ``configs/gumbel/mnist4.yaml`` with real batches, alternating round by round
(a round is one update per task of each version; the order flips every round), so a burst of
load on a shared machine hits both alike. Prints the median wall and CPU (``process_time``)
milliseconds per update and the ratios to the base, with the load average. It first checks that
both compute the same 12 training losses from the same seed (same allocation samples, dropout
masks and updates). ``--parts``: also this tree with its layer chain off (layer by layer,
``ConvBank.forward_chain``) and with the reference routing (``allocation`` + ``mix_weights``).
"""

from __future__ import annotations

import argparse
import importlib
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def export_base(commit: str, into: Path) -> None:
    """``src/sharewise`` at ``commit`` as the package ``into/sharewise_base``."""
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "src/sharewise"], check=True,
                         capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=tar, check=True)
    pkg = into / "sharewise_base"
    (into / "src" / "sharewise").rename(pkg)
    for path in pkg.rglob("*.py"):
        text = path.read_text()
        path.write_text(re.sub(r"\bsharewise(?=[.]| import)", "sharewise_base", text))


def make_trainer(package: str, data_dir: str):
    read_yaml = importlib.import_module(package + ".config").read_yaml
    prepare = importlib.import_module(package + ".runner").prepare
    trainer_cls = importlib.import_module(package + ".training.trainer").Trainer
    cfg, tasks, model = prepare(read_yaml(ROOT / "configs" / "gumbel" / "mnist4.yaml"), data_dir)
    return trainer_cls(cfg, model, tasks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the commit to compare against")
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--parts", action="store_true", help="also this tree without each of its fast paths")
    args = parser.parse_args()
    torch.set_num_threads(1)
    tmp = tempfile.TemporaryDirectory()
    export_base(args.base, Path(tmp.name))
    sys.path.insert(0, tmp.name)

    from sharewise.components.fused_banks import ConvBank
    from sharewise.sharing.gumbel_matrix import _ModularScheme

    chain = ConvBank.forward_chain
    trainers = {"base": make_trainer("sharewise_base", args.data_dir), "this": make_trainer("sharewise", args.data_dir)}
    setup: dict[str, Callable[[], None]] = {k: (lambda: setattr(ConvBank, "forward_chain", chain)) for k in trainers}
    if args.parts:
        trainers["no_chain"] = make_trainer("sharewise", args.data_dir)
        setup["no_chain"] = lambda: setattr(ConvBank, "forward_chain", staticmethod(lambda *a: None))
        trainers["ref_routing"] = make_trainer("sharewise", args.data_dir)
        scheme = trainers["ref_routing"].model.scheme
        scheme.routing = lambda ids: _ModularScheme.routing(scheme, ids)
        setup["ref_routing"] = setup["this"]
    torch.set_num_threads(1)  # prepare() applies train.threads (1) too
    x, y = trainers["base"].sampler.next()
    n_tasks = x.shape[0]

    def update(name: str, step: int) -> float:
        return sum(trainers[name]._update(x[t:t + 1], y[t:t + 1], [t], step=step) for t in range(n_tasks))

    losses = {}
    for name in trainers:
        setup[name]()
        torch.manual_seed(123)
        losses[name] = [update(name, 0) for _ in range(3)]
    print(f"training losses of 3 rounds from the same seed: {losses}", flush=True)
    wall: dict[str, list[float]] = {k: [] for k in trainers}
    cpu: dict[str, list[float]] = {k: [] for k in trainers}
    names = list(trainers)
    for r in range(args.rounds + 10):  # 10 warm-up rounds
        for name in names if r % 2 else names[::-1]:
            setup[name]()
            t0, c0 = time.perf_counter(), time.process_time()
            update(name, r)
            if r >= 10:
                wall[name].append((time.perf_counter() - t0) / n_tasks * 1e3)
                cpu[name].append((time.process_time() - c0) / n_tasks * 1e3)
    setup["this"]()
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    print(f"4-MNISTs alternating update, {torch.get_num_threads()} thread, median of {args.rounds} rounds x "
          f"{n_tasks} updates, variants alternating; load {load}")
    print_versus_base(wall, cpu, "update")


def print_versus_base(wall: dict[str, list[float]], cpu: dict[str, list[float]], unit: str) -> None:
    """Per version: median wall and CPU milliseconds per ``unit`` and their ratios to ``base``."""
    w0, c0 = statistics.median(wall["base"]), statistics.median(cpu["base"])
    for name in wall:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        print(f"  {name:12s} {w:.3f} ms wall, {c:.3f} ms CPU per {unit}; vs base: wall {w / w0:.3f}, CPU {c / c0:.3f}")


if __name__ == "__main__":
    main()
