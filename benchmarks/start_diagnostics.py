"""Why a scheme does or does not leave chance: two measurements at the initial weights.

    python benchmarks/start_diagnostics.py CONFIG
        --setups "parallel;soft_ordering;soft_ordering scheme_options.parallel_init=2.0"
        [--steps 64] [--images 64] [--seed 0] [--train-steps 0] [--data-dir ../shared/data] [key=value ...]

Each setup is a scheme name followed by its own ``key=value`` overrides (setups separated by
``;``); trailing ``key=value`` arguments apply to all. For each setup, built as a run builds it
from ``--seed``:

- **gradient consistency** ``c = ||mean_i g_i|| / mean_i ||g_i||`` over ``--steps`` independent
  training steps (train mode, the config's batch, the same sampled batches for every setup), where
  ``g_i`` is the gradient of the summed task loss with respect to the core's weights (parameters
  under ``scheme.``). Pure noise gives ``1/sqrt(N)``; ``(c^2 - 1/N) / (1 - 1/N)`` estimates the
  share of one step's gradient energy that is the expected gradient. Adam normalises each step, so
  when that share is small its updates are mostly a random walk.
- **feature variation**: the core's output for ``--images`` training images per task (eval mode),
  its variance across images per feature over its mean square level; near 0 means the heads see
  nearly the same vector for every image.

- **the first training steps** (``--train-steps N``): N Adam steps at the config's learning rate
  on fresh batches, reporting at steps 0, 10, 25, 50, 100, ... the summed loss, the feature
  variation and level as above, the share of the core's output features that are zero for every
  probe image (dead), and the mean bias of the core. This is what showed the stall's cause: under
  soft ordering Adam drives the biases negative faster than the small initial activations can
  carry, every ReLU dies and the features become input-independent within ~100 steps.

Results §1.5 (Omniglot-50, soft ordering at chance) used this on
``configs/omniglot50/soft_ordering_reduced.yaml``.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

from sharewise.builders import build_model
from sharewise.config import apply_overrides, parse_config, read_yaml
from sharewise.data.tasksets import build_tasks
from sharewise.tasks.losses import MultiTaskLoss
from sharewise.tasks.spec import check_task_list


def sample_batches(tasks: list[Any], n: int, batch: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n`` batches of ``batch`` training examples per task, drawn with replacement."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        idx = [torch.randint(len(t.y_train), (batch,), generator=gen) for t in tasks]
        out.append((torch.stack([t.x_train[i] for t, i in zip(tasks, idx)]),
                    torch.stack([t.y_train[i] for t, i in zip(tasks, idx)])))
    return out


def task_loss(model: torch.nn.Module, tasks: list[Any], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The summed task loss, as a run computes it (``MultiTaskLoss``: any task kinds)."""
    loss_fn = _LOSSES.get(id(tasks))
    if loss_fn is None:
        loss_fn = _LOSSES[id(tasks)] = MultiTaskLoss(tasks)
    return loss_fn(model(x), y, count_errors=False)[0].sum()


_LOSSES: dict[int, Any] = {}


def gradient_consistency(model: torch.nn.Module, tasks: list[Any], batches: list[Any]) -> float:
    params = [p for n, p in model.named_parameters() if n.startswith("scheme.") and p.requires_grad]
    model.train()
    grads = []
    for x, y in batches:
        loss = task_loss(model, tasks, x, y)
        g = torch.autograd.grad(loss, params, allow_unused=True)
        grads.append(torch.cat([(a if a is not None else torch.zeros_like(p)).flatten() for a, p in zip(g, params)]))
    stacked = torch.stack(grads)
    return float(stacked.mean(0).norm() / stacked.norm(dim=1).mean())


def feature_variation(model: torch.nn.Module, tasks: list[Any], images: int) -> tuple[float, float]:
    h = core_features(model, torch.stack([t.x_train[:images] for t in tasks]))  # [T, B, F]
    return float(h.var(1).mean() / h.mean(1).pow(2).mean()), float(h.mean())


def core_features(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The core's output ``[T, B, F]`` for stacked inputs ``x`` (eval mode, no gradient)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        h = model.scheme(model.encoders(x)).flatten(2)
    model.train(was_training)
    return h


def train_trace(model: torch.nn.Module, tasks: list[Any], batches: list[Any], lr: float, images: int) -> None:
    """Adam on ``batches`` (one step each), printing the state of the core's features as it trains."""
    probe = torch.stack([t.x_train[:images] for t in tasks])
    biases = [p for n, p in model.named_parameters() if n.startswith("scheme.") and n.endswith("bias")]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    report_at = {0, 10, 25, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000, len(batches)}
    loss_value = grad_rms = float("nan")
    model.train()
    for step in range(len(batches) + 1):
        if step in report_at:
            h = core_features(model, probe)
            dead = float((h.flatten(0, 1) <= 0).all(0).float().mean())  # a feature zero for every image
            bias = float(torch.cat([b.detach().flatten() for b in biases]).mean()) if biases else float("nan")
            variation = float(h.var(1).mean() / h.mean(1).pow(2).mean().clamp_min(1e-30))
            print(f"    step {step:5d}: loss {loss_value:8.2f}, feature variance / mean^2 {variation:.3f}, "
                  f"level {float(h.mean()):.5f}, dead features {100 * dead:5.1f} %, "
                  f"mean core bias {bias:+.4f} (gradient rms {grad_rms:.1e})", flush=True)
        if step == len(batches):
            break
        x, y = batches[step]
        loss = task_loss(model, tasks, x, y)
        opt.zero_grad()
        loss.backward()
        if biases:
            grad_rms = float(torch.cat([b.grad.flatten() for b in biases if b.grad is not None]).pow(2).mean().sqrt())
        opt.step()
        loss_value = float(loss.detach())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--setups", required=True, help="';'-separated: scheme [key=value ...]")
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-steps", type=int, default=0, help="then train this many Adam steps, tracing the features")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("overrides", nargs="*", metavar="key=value")
    args = ap.parse_intermixed_args(argv)
    torch.set_num_threads(1)
    data = apply_overrides(read_yaml(args.config), args.overrides)
    base = parse_config(data)
    loaded: dict[str, list[Any]] = {}

    def tasks_of(cfg: Any) -> list[Any]:
        """The task set a setup asks for (a setup may override tasks.options), loaded once each."""
        key = repr((cfg.tasks.builder, sorted(cfg.tasks.options.items())))
        if key not in loaded:
            loaded[key] = check_task_list(build_tasks(cfg.tasks.builder, data_dir=args.data_dir, seed=cfg.seed,
                                                      options=cfg.tasks.options), cfg.tasks.builder)
        return loaded[key]

    floor = args.steps ** -0.5
    print(f"{args.config}: {len(tasks_of(base))} tasks, {args.steps} steps of batch {base.train.batch_size} per task; "
          f"pure noise gives c = {floor:.3f}")
    for setup in filter(None, (s.strip() for s in args.setups.split(";"))):
        scheme, *extra = setup.split()
        cfg = parse_config(apply_overrides(data, [f"scheme={scheme}", f"seed={args.seed}", *extra]))
        tasks = tasks_of(cfg)
        batches = sample_batches(tasks, args.steps, base.train.batch_size, args.seed)  # the same draws per setup
        torch.manual_seed(args.seed)
        model = build_model(cfg, tasks)
        c = gradient_consistency(model, tasks, batches)
        share = (c * c - floor * floor) / (1 - floor * floor)
        var_ratio, level = feature_variation(model, tasks, args.images)
        print(f"{setup:<50} c = {c:.3f}, expected-gradient share {100 * share:.1f} %; "
              f"feature variance / mean^2 {var_ratio:.3f}, mean level {level:.4f}", flush=True)
        if args.train_steps > 0:
            train_trace(model, tasks, sample_batches(tasks, args.train_steps, base.train.batch_size, args.seed + 1),
                        cfg.train.lr, args.images)


if __name__ == "__main__":
    main()
