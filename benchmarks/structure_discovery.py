"""Which method finds the task structure? ARI of recovered vs planted families, per method.

    python benchmarks/structure_discovery.py synthetic --out /tmp/sd_syn --seeds 0,1,2
    python benchmarks/structure_discovery.py clusters --out /tmp/sd_clu --seeds 0,1,2 --data-dir ../shared/data

Trains single_task (for RSA), parallel (gradient baseline), soft_ordering and gumbel_matrix on a
task set with planted families (``sharewise compare`` layout under --out, so re-running resumes),
then scores every method with ``sharewise.pipelines.families.discover``: one similarity per
method, the same average-linkage clustering into k = number of families, ARI against the
planted families per seed, mean and 95 % t-interval, compute per seed (training + analysis).
Writes ``families.json``, ``families.md`` and ``families.png`` (the four similarity matrices).

Settings (all reduced for a shared 2-core CPU; state them with the numbers):

- ``synthetic``: ``synthetic_relatedness`` (Gumbel-Matrix App. A1 generator) with 3 families of
  3 tasks; ``--rho`` the within-family weight cosine (0 across); identity encoder, shared head,
  dense core 32 x 3 (the demo's setting); ``--per-task-encoders`` gives every task its own dense
  encoder and head instead.
- ``clusters``: ``latent_clusters`` (MNIST and Fashion-MNIST leave-one-class-out tasks + Omniglot
  alphabets at 28x28), ``--per-family`` tasks of each family, ``--max-train`` samples per task;
  channel-pad encoder, conv core 8 channels x 3 (2x2 pooling), per-task heads.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sharewise.pipelines.demo import demo_config  # noqa: E402
from sharewise.pipelines.families import METHOD_SCHEME, discover, markdown, plot_matrices  # noqa: E402
from sharewise.sweep import run_grid  # noqa: E402


def config(args: argparse.Namespace) -> dict:
    if args.setting == "synthetic":
        cfg = demo_config(args.steps)
        cfg["name"] = "structure_synthetic"
        cfg["tasks"]["options"]["rho"] = args.rho
        if args.per_task_encoders:
            cfg["model"]["encoder"] = {"kind": "dense", "activation": "relu"}
            cfg["model"]["head"] = {"shared": False}
        return cfg
    n = args.per_family
    return {
        "name": "structure_clusters",
        "scheme": "soft_ordering",
        "tasks": {"builder": "latent_clusters",
                  "options": {"n_mnist": n, "n_fashion": n, "n_omniglot": n, "max_train_per_task": args.max_train}},
        "model": {"encoder": {"kind": "channel_pad"},
                  "core": {"kind": "conv", "width": 8, "depth": 3, "kernel_size": 3, "pool": True, "dropout": 0.0},
                  "head": {"pool": "flatten"}},
        "train": {"steps": args.steps, "batch_size": 16, "lr": 0.003, "eval_every": max(1, args.steps // 3),
                  "eval_batch_size": 1024, "threads": 1},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("setting", choices=["synthetic", "clusters"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--rho", type=float, default=0.95)
    ap.add_argument("--per-task-encoders", action="store_true")
    ap.add_argument("--per-family", type=int, default=3)
    ap.add_argument("--max-train", type=int, default=1000)
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    args = ap.parse_args()
    out, seeds = Path(args.out), [int(s) for s in args.seeds.split(",")]
    data_dir = args.data_dir if args.setting == "clusters" else None
    for res in run_grid(config(args), list(METHOD_SCHEME.values()), seeds, out, data_dir):
        print(f"{res.scheme} seed {res.seed}: {res.message} ({res.seconds:.1f} s)", flush=True)
    found = discover(out, seeds, data_dir)
    found["args"] = vars(args)
    (out / "families.json").write_text(json.dumps(found, indent=1))
    table = markdown(found)
    (out / "families.md").write_text(table + "\n")
    plot_matrices(found)[0].savefig(out / "families.png", dpi=110, bbox_inches="tight")
    print(table)


if __name__ == "__main__":
    main()
