"""Tables of the reduced Gumbel-Matrix reproductions (docs/results.md, section 2) from run directories.

    python benchmarks/repro_gumbel_results.py [RUNS_DIR]        # default runs/gumbel

Reads ``<RUNS_DIR>/<experiment>/<scheme>/seed<N>/summary.json`` (as ``sharewise compare`` writes
them) and prints, per experiment, every run's numbers and its learned allocation:

- transfer_rho{0,1}: mean test loss (MSE) of shared_bottom vs no_sharing (Sec. II, Fig. 1).
- synthetic_pairs: mean test loss; whether each pair of related tasks got identical components
  and the two pairs disjoint ones (App. A3, Fig. 7).
- mnist4, mnist4_budget: test accuracy per task and mean, active fraction, allocation, and
  whether it splits MNIST from MNIST-rot (both copies of a task type one pattern, the two types
  different patterns) (Sec. V-A, Table I).
- omniglot20_reduced: validation / test error (Sec. V-B, Table II).
- clusters_reduced (a single run dir): adjusted Rand index of an agglomerative clustering
  (cosine distance, average linkage, 3 clusters) of the task embeddings against the task families
  (Sec. V-C, Figs. 5-6).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from sharewise.analysis.embeddings import identical_embedding_clusters, task_embeddings


def _runs(root: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(root.glob("*/seed*/summary.json"))]


def _embeddings(summary: dict[str, Any]) -> np.ndarray:
    alloc = summary["structure"]["allocation"]
    return task_embeddings({k: alloc[k] for k in sorted(alloc, key=int)})  # [T, sum_l C_l]


def _pattern(summary: dict[str, Any]) -> str:
    alloc = summary["structure"]["allocation"]
    return " ".join("|".join("".join(map(str, layer)) for layer in alloc[k]) for k in sorted(alloc, key=int))


def _groups_split(summary: dict[str, Any], groups: list[list[int]]) -> bool:
    """Tasks within a group share one pattern and different groups' patterns differ."""
    emb = _embeddings(summary)
    within = all((emb[g] == emb[g[0]]).all() for g in groups)
    across = len({emb[g[0]].tobytes() for g in groups}) == len(groups)
    return bool(within and across)


def transfer(root: Path) -> None:
    print("## transfer (Sec. II): mean test loss (MSE), best checkpoint by validation loss")
    for rho in (0, 1):
        runs = _runs(root / f"transfer_rho{rho}")
        for scheme in sorted({r["scheme"] for r in runs}):
            vals = [r["mean_test_loss"] for r in runs if r["scheme"] == scheme]
            print(f"rho={rho} {scheme:<14} {np.mean(vals):.4f}  per seed {[round(v, 4) for v in vals]}  "
                  f"wall {sum(r['wall_time_s'] for r in runs if r['scheme'] == scheme):.0f} s")


def synthetic_pairs(root: Path) -> None:
    print("## synthetic pairs (App. A3): mean test loss; allocation per task (pairs {0,1}, {2,3})")
    for r in _runs(root / "synthetic_pairs"):
        split = _groups_split(r, [[0, 1], [2, 3]])
        disjoint = not (_embeddings(r)[[0, 1]].max(0) * _embeddings(r)[[2, 3]].max(0)).any()
        print(f"{r['scheme']:<14} seed {r['seed']}: loss {r['mean_test_loss']:.4f}  alloc {_pattern(r)}  "
              f"pairs split {split}, disjoint {disjoint}  ({r['wall_time_s']:.0f} s)")


def mnist4(root: Path) -> None:
    print("## 4-MNISTs (Sec. V-A): test accuracy %, best checkpoint by validation loss")
    for name in ("mnist4", "mnist4_budget"):
        for r in _runs(root / name):
            acc = [100 * (1 - t["test_error"]) for t in r["tasks"].values()]
            s = r["structure"]
            label = r["scheme"] + (f" b={s.get('budget')}" if s.get("budget") else "")
            print(f"{label:<22} seed {r['seed']}: mean {np.mean(acc):.2f}  per task {[round(a, 2) for a in acc]}  "
                  f"active {s['active_fraction']:.2f}  alloc {_pattern(r)}  "
                  f"split {_groups_split(r, [[0, 1], [2, 3]])}  ({r['wall_time_s']:.0f} s)")


def omniglot(root: Path) -> None:
    print("## Omniglot-20 REDUCED (Sec. V-B): mean validation / test error %")
    for r in _runs(root / "omniglot20_reduced"):
        val = np.mean([t["val_error"] for t in r["tasks"].values()]) * 100
        print(f"{r['scheme']:<14} seed {r['seed']}: val {val:.2f}  test {100 * r['mean_test_error']:.2f}  "
              f"active {r['structure']['active_fraction']:.2f}  ({r['wall_time_s']:.0f} s)")


def clusters(run_dir: Path) -> None:
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.metrics import adjusted_rand_score

    print("## latent clusters REDUCED (Sec. V-C): task embeddings vs families")
    r = json.loads((run_dir / "summary.json").read_text())
    names = r["structure"]["tasks"]
    families = [r["data"][n]["notes"]["family"] for n in names]
    emb = _embeddings(r)  # [T, 48]
    groups = identical_embedding_clusters(emb, names)
    if (emb.sum(1) == 0).any():
        print("warning: some task uses no component; cosine distance is undefined for it")
    emb = emb + 1e-9 * (emb.sum(1, keepdims=True) == 0)  # keep an all-zero row clusterable
    pred = AgglomerativeClustering(n_clusters=3, metric="cosine", linkage="average").fit_predict(emb)
    print(f"ARI (agglomerative, cosine, average, k=3) = {adjusted_rand_score(families, pred):.3f}")
    print(f"distinct embeddings: {len(groups)}; active fraction {r['structure']['active_fraction']:.2f}; "
          f"mean test error {100 * r['mean_test_error']:.2f} %  ({r['wall_time_s']:.0f} s)")
    for fam in dict.fromkeys(families):
        idx = [i for i, f in enumerate(families) if f == fam]
        print(f"  {fam:<9} clusters {sorted(pred[idx].tolist())}")
    sim = np.asarray(r["structure"]["task_similarity"])
    fam = np.asarray(families)
    same = fam[:, None] == fam[None, :]
    off = ~np.eye(len(fam), dtype=bool)
    print(f"mean cosine within families {sim[same & off].mean():.3f}, across {sim[~same].mean():.3f}")


def main(argv: list[str]) -> None:
    root = Path(argv[1]) if len(argv) > 1 else Path("runs/gumbel")
    for name, fn in (("transfer_rho0", transfer), ("synthetic_pairs", synthetic_pairs), ("mnist4", mnist4),
                     ("omniglot20_reduced", omniglot)):
        if (root / name).exists():
            fn(root)
            print()
    if (root / "clusters_reduced" / "summary.json").exists():
        clusters(root / "clusters_reduced")


if __name__ == "__main__":
    main(sys.argv)
