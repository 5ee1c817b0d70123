"""Soft-ordering training step: sharewise's stacked model vs a loop written as Eq. 7 reads.

    .venv/bin/python benchmarks/bench_soft_ordering.py [--quick] [--threads 1] [--rounds 15]

One training step = forward, loss (sum of the per-task cross-entropies), backward, Adam step,
with dropout on (train mode). Configurations (soft-ordering paper, Sec. 4.1-4.2):

- UCI-10: T=10, learned FC-32 ReLU encoders from the ten UCI input widths, 4 core FC-32 layers,
  dropout 0.8, softmax heads with each set's class count, batch 64 per task;
- MNIST pairs: T=10 and T=45, frozen random FC-64 ReLU encoders from 784 inputs, 4 core FC-64
  layers, dropout 0.5, sigmoid heads, batch 64 per task.

``stacked`` is sharewise's model (stacked encoders, the ``soft_ordering`` scheme, stacked heads,
``MultiTaskLoss``) with Adam as ``training/optim.py`` builds it (two groups, ``foreach=True``);
``stacked+fused`` is the same with ``Adam(fused=True)``. ``reference`` loops over tasks and, inside,
over depths and layers (per-task ``nn.Linear`` encoders and heads, D shared ``nn.Linear`` core
layers, dropout on each (task, layer) output, ``F.cross_entropy`` per task), with the same Adam
(``foreach=True``) so the ratio measures the stacking alone. Inputs are random (speed does not
depend on the values). Variants alternate within every round and each round times a block of
steps, so load from other processes hits them alike; the printed times are medians over rounds.
The peak fraction uses the reference's FLOPs (no padding; counted by
``torch.utils.flop_counter``) over the stacked step's time, against a 2048^3 float32 matmul.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peak import matmul_peak  # noqa: E402
from _timing import interleaved_seconds  # noqa: E402

from sharewise.components.layer_bank import DenseLayerBank  # noqa: E402
from sharewise.components.task_modules import StackedDense  # noqa: E402
from sharewise.model import MultiTaskModel  # noqa: E402
from sharewise.sharing import CoreSpec, create_scheme  # noqa: E402
from sharewise.tasks.losses import MultiTaskLoss  # noqa: E402
from sharewise.tasks.spec import TaskData  # noqa: E402
from sharewise.components.gemm import gemm_backend  # noqa: E402
from sharewise.training.allocator import keep_freed_memory  # noqa: E402

# The ten UCI sets in the paper's order: (input width, classes) as sharewise's loaders give them.
UCI10 = [(14, 2), (30, 2), (7, 8), (24, 2), (13, 5), (19, 2), (4, 3), (8, 2), (13, 3), (8, 10)]


@dataclass(frozen=True)
class Config:
    label: str
    in_dims: list[int]
    n_outputs: list[int]  # classes per task; 1 = a binary task with one sigmoid logit
    width: int
    depth: int
    dropout: float
    frozen_encoders: bool
    batch: int = 64


def uci10() -> Config:
    return Config("UCI-10 T=10 W=32 B=64", [d for d, _ in UCI10], [c for _, c in UCI10], 32, 4, 0.8, False)


def mnist_pairs(n_tasks: int) -> Config:
    return Config(f"MNIST-pairs T={n_tasks} W=64 B=64", [784] * n_tasks, [1] * n_tasks, 64, 4, 0.5, True)


def task_data(cfg: Config) -> list[TaskData]:
    """Stand-in tasks: only kinds and output widths matter to the loss."""
    tasks = []
    for t, (d, c) in enumerate(zip(cfg.in_dims, cfg.n_outputs)):
        x, y = torch.zeros(2, d), torch.zeros(2, dtype=torch.long)
        tasks.append(TaskData(f"t{t}", "binary" if c == 1 else "multiclass", c, x, y, x, y, x, y))
    return tasks


# -- the two models ------------------------------------------------------------------------

def stacked_step(cfg: Config, xs: list[Tensor], ys: list[Tensor], fused: bool) -> Callable[[], None]:
    """sharewise's stacked soft-ordering model, one step as the trainer makes it."""
    t = len(cfg.in_dims)
    encoders = StackedDense(cfg.in_dims, cfg.width, "relu", frozen=cfg.frozen_encoders)
    core = CoreSpec(make_bank=lambda n: DenseLayerBank(n, cfg.width), depth=cfg.depth,
                    feature_shape=(cfg.width,), dropout=cfg.dropout)
    heads = StackedDense([cfg.width] * t, max(cfg.n_outputs), "linear")
    model = MultiTaskModel(encoders, create_scheme("soft_ordering", core, t, seed=0), heads).train()
    loss_fn = MultiTaskLoss(task_data(cfg))
    in_max = max(cfg.in_dims)
    x = torch.stack([F.pad(xi, (0, in_max - xi.shape[1])) for xi in xs])  # [T, B, in_max]
    y = torch.stack([yi.float().unsqueeze(1) for yi in ys])  # [T, B, 1]
    groups = [{"params": model.weight_parameters()}, {"params": model.architecture_parameters()}]
    opt = torch.optim.Adam(groups, lr=1e-3, **({"fused": True} if fused else {"foreach": True}))

    def step() -> None:
        losses, _ = loss_fn(model(x), y)  # [T]
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        opt.step()

    return step


class LoopModel(nn.Module):
    """Eq. 7 as written: y_t^k = sum_j s(t,j,k) dropout(W_j(y_t^{k-1})), task by task."""

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        t = len(cfg.in_dims)
        self.encoders = nn.ModuleList(nn.Linear(d, cfg.width) for d in cfg.in_dims)
        if cfg.frozen_encoders:
            self.encoders.requires_grad_(False)
        self.core = nn.ModuleList(nn.Linear(cfg.width, cfg.width) for _ in range(cfg.depth))
        self.heads = nn.ModuleList(nn.Linear(cfg.width, c) for c in cfg.n_outputs)
        self.logits = nn.Parameter(torch.zeros(t, cfg.depth, cfg.depth))  # [T, J, D]

    def loss(self, xs: list[Tensor], ys: list[Tensor]) -> Tensor:
        total = torch.zeros(())
        for t, (x, y) in enumerate(zip(xs, ys)):
            h = torch.relu(self.encoders[t](x))  # [B, W]
            s = torch.softmax(self.logits[t], dim=0)  # [J, D]
            for k in range(self.cfg.depth):
                mixed = 0
                for j, layer in enumerate(self.core):
                    out = F.dropout(torch.relu(layer(h)), self.cfg.dropout, self.training)
                    mixed = mixed + s[j, k] * out
                h = mixed
            out = self.heads[t](h)  # [B, classes]
            if self.cfg.n_outputs[t] == 1:
                total = total + F.binary_cross_entropy_with_logits(out[:, 0], y.float())
            else:
                total = total + F.cross_entropy(out, y)
        return total


def reference_step(cfg: Config, xs: list[Tensor], ys: list[Tensor]) -> Callable[[], None]:
    model = LoopModel(cfg).train()
    params = [p for n, p in model.named_parameters() if p.requires_grad and n != "logits"]
    opt = torch.optim.Adam([{"params": params}, {"params": [model.logits]}], lr=1e-3, foreach=True)

    def step() -> None:
        loss = model.loss(xs, ys)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


# -- timing ----------------------------------------------------------------------------------

def time_variants(steps: dict[str, Callable[[], None]], rounds: int, block: int) -> dict[str, float]:
    """Median over rounds of the mean seconds per step in a block; variants alternate per round."""
    samples = interleaved_seconds(steps, rounds, block, warmup=3)  # allocator, oneDNN primitives, Adam state
    return {str(name): statistics.median(v) for name, v in samples.items()}


def count_flops(step: Callable[[], None]) -> int:
    from sharewise.components.gemm import count_flops_of_onednn

    count_flops_of_onednn()  # oneDNN products count too (a FlopCounterMode copies the formulas when made)
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def run(cfg: Config, rounds: int, block: int, peak: float) -> None:
    torch.manual_seed(0)
    xs = [torch.rand(cfg.batch, d) for d in cfg.in_dims]
    ys = [torch.randint(0, max(c, 2), (cfg.batch,)) for c in cfg.n_outputs]
    steps = {
        "stacked": stacked_step(cfg, xs, ys, fused=False),
        "stacked+fused": stacked_step(cfg, xs, ys, fused=True),
        "reference": reference_step(cfg, xs, ys),
    }
    times = time_variants(steps, rounds, block)
    flops = count_flops(steps["reference"])
    t_s, t_f, t_r = times["stacked"], times["stacked+fused"], times["reference"]
    print(f"{cfg.label}: stacked {1e3 * t_s:.2f} ms, stacked+fused-Adam {1e3 * t_f:.2f} ms, "
          f"reference loop {1e3 * t_r:.2f} ms; speed-up: {t_r / t_s:.2f}x "
          f"(fused Adam: {t_r / t_f:.2f}x); {flops / 1e6:.1f} MFLOP/step, stacked "
          f"{100 * flops / t_s / peak:.1f}% / reference {100 * flops / t_r / peak:.1f}% of matmul peak",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per variant (default 15, quick 5)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    allocator = keep_freed_memory()  # as a `sharewise` process (both variants share the process)
    rounds = args.rounds or (5 if args.quick else 15)
    block = 5 if args.quick else 10
    peak = matmul_peak()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s) (torch.set_num_threads), "
          f"float32 matmul peak {peak / 1e9:.1f} GFLOP/s; median of {rounds} rounds x {block} steps; "
          f"allocator {allocator}; gemm {gemm_backend()}",
          flush=True)
    for cfg in (uci10(), mnist_pairs(10), mnist_pairs(45)):
        run(cfg, rounds, block, peak)


if __name__ == "__main__":
    main()
