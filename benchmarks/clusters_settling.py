"""Latent task clusters (Maziarz et al., Sec. V-C): did the allocations settle, and do they
recover the task families?

    python benchmarks/clusters_settling.py RUN_DIR [RUN_DIR ...] [--figures DIR]

Reads each Gumbel-Matrix run's ``metrics.jsonl`` (the connection probabilities logged at every
evaluation) and ``summary.json`` (task families from the task notes, the final allocation). Per
evaluation it prints the fraction of connections whose maximum-likelihood allocation (p >= 0.5)
changed since the previous evaluation, the fraction of probabilities already saturated (below
0.05 or above 0.95), the family ARI of that evaluation's allocation (agglomerative, cosine,
average linkage, as many clusters as families) and the family ARI of its *probabilities* (the
same clustering of their centred cosine, as ``sharewise.analysis.families`` scores every method);
then the final ARI, within/across-family cosine similarity, the distinct embeddings and, per
family, the mean centred cosine of the final probabilities within the family against across.
Why both: a family signal can sit in the probabilities long before (or without) the binary
allocation showing it, and the paper's Fig. 5 reads the binary allocation. "Settled" means no
allocation changed over the last quarter of training. Why: the session-3 run froze a random pattern
within 150 steps (router lr 5x the paper's); a claim about clusters needs the allocation to stop
moving *after* the components had time to specialise, which this shows step by step. ``--figures``
writes Figs. 5 and 6 (allocation image, embedding similarity) with the tasks grouped by family, and
the same two from the last evaluation's probabilities (``probabilities_*.png``,
``probability_similarity_*.png``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sharewise.analysis.families import adjusted_rand, centred_cosine, cluster, cosine, family_coherence  # noqa: E402
from sharewise.reporting.allocation_plots import probability_curves  # noqa: E402
from sharewise.training.io import read_jsonl  # noqa: E402


def families_of(summary: dict) -> list[str]:
    names = summary["structure"]["tasks"]
    return [str(((summary.get("data") or {}).get(n, {}).get("notes") or {}).get("family")) for n in names]


def embedding_ari(bits: np.ndarray, families: list[str]) -> float:
    """ARI of the clustering of binary task embeddings [T, D] (an all-zero row stays clusterable)."""
    bits = bits + 1e-9 * (bits.sum(1, keepdims=True) == 0)
    return adjusted_rand(families, cluster(cosine(bits), len(set(families))))


def settling(run_dir: Path) -> dict:
    if not (run_dir / "summary.json").is_file():
        sys.exit(f"{run_dir} holds no finished run (no summary.json): pass the --out folder of a finished "
                 f"Gumbel-Matrix run")
    summary = json.loads((run_dir / "summary.json").read_text())
    families = families_of(summary)
    steps, probs = probability_curves(read_jsonl(run_dir / "metrics.jsonl"))  # [S, T, L, C]
    flat = probs.reshape(len(steps), probs.shape[1], -1)
    flat = flat[:, :, ~np.isnan(flat[0, 0])]
    on = flat >= 0.5
    rows = []
    for s in range(len(steps)):
        changed = float((on[s] != on[s - 1]).mean()) if s else float("nan")
        saturated = float(((flat[s] < 0.05) | (flat[s] > 0.95)).mean())
        rows.append({"step": int(steps[s]), "changed": changed, "saturated": saturated,
                     "active": float(on[s].mean()), "ari": embedding_ari(on[s].astype(float), families),
                     "ari_p": adjusted_rand(families, cluster(centred_cosine(flat[s]), len(set(families))))})
    last_quarter = [r for r in rows if r["step"] > 0.75 * steps[-1]]
    alloc = summary["structure"]["allocation"]
    final = np.asarray([[v for layer in alloc[k] for v in layer] for k in sorted(alloc, key=int)], dtype=float)
    sim = cosine(final + 1e-9 * (final.sum(1, keepdims=True) == 0))
    fam = np.asarray(families)
    same, off = fam[:, None] == fam[None, :], ~np.eye(len(fam), dtype=bool)
    return {"run": str(run_dir), "families": families, "rows": rows,
            "settled": all(r["changed"] == 0 for r in last_quarter[1:]) if len(last_quarter) > 1 else None,
            "final_ari": embedding_ari(final, families), "within": float(sim[same & off].mean()),
            "across": float(sim[~same].mean()), "distinct": len({tuple(r) for r in final.astype(int)}),
            "test_error": summary.get("mean_test_error"), "wall_time_s": summary.get("wall_time_s"),
            "coherence": family_coherence(centred_cosine(flat[-1]), families),
            "probabilities": probs[-1], "probability_similarity": centred_cosine(flat[-1]),
            "allocation": final, "layers": [alloc[k] for k in sorted(alloc, key=int)], "similarity": sim,
            "names": summary["structure"]["tasks"]}


def figures(result: dict, out: Path) -> None:
    from sharewise.reporting.allocation_plots import plot_allocation, plot_task_similarity

    order = sorted(range(len(result["families"])), key=lambda i: (result["families"][i], i))
    names = [f"{result['families'][i]}:{result['names'][i]}" for i in order]
    alloc = {str(j): result["layers"][i] for j, i in enumerate(order)}
    out.mkdir(parents=True, exist_ok=True)
    tag = Path(result["run"]).name
    fig, _ = plot_allocation(alloc, names)
    fig.savefig(out / f"allocation_{tag}.png", dpi=120, bbox_inches="tight")
    sim = result["similarity"][np.ix_(order, order)]
    fig, _ = plot_task_similarity(sim.tolist(), names)
    fig.savefig(out / f"similarity_{tag}.png", dpi=120, bbox_inches="tight")
    # the same two figures from the last evaluation's probabilities (where a family signal shows first)
    probs = result["probabilities"]  # [T, L, C] (NaN where a layer has fewer components)
    rows = {str(j): [[float(v) for v in layer if not np.isnan(v)] for layer in probs[i]] for j, i in enumerate(order)}
    fig, _ = plot_allocation(rows, names, title="Connection probabilities (last evaluation)")
    fig.savefig(out / f"probabilities_{tag}.png", dpi=120, bbox_inches="tight")
    psim = result["probability_similarity"][np.ix_(order, order)]
    fig, _ = plot_task_similarity(psim.tolist(), names, title="Centred cosine of the probabilities", vmin=-1.0)
    fig.savefig(out / f"probability_similarity_{tag}.png", dpi=120, bbox_inches="tight")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument("--figures", type=Path, default=None, help="write Figs. 5 and 6 per run here")
    args = parser.parse_args(argv)
    for run_dir in args.run_dirs:
        r = settling(run_dir)
        print(f"## {r['run']}  (families: {', '.join(dict.fromkeys(r['families']))})")
        print("step     changed  saturated  active  ARI(allocation)  ARI(probabilities)")
        for row in r["rows"]:
            print(f"{row['step']:<8} {row['changed']:7.3f}  {row['saturated']:9.3f}  {row['active']:6.3f}  "
                  f"{row['ari']:+15.3f}  {row['ari_p']:+18.3f}")
        print(f"settled over the last quarter: {r['settled']}; ARI of the reported (selected) state "
              f"{r['final_ari']:+.3f}; cosine within "
              f"families {r['within']:.3f}, across {r['across']:.3f}; {r['distinct']} distinct embeddings; mean "
              f"test error {100 * r['test_error']:.1f} %; {r['wall_time_s']:.0f} s")
        print("last evaluation's probabilities, centred cosine within each family vs across: "
              + ", ".join(f"{k} {v:+.2f}" for k, v in r["coherence"].items()))
        if args.figures is not None:
            figures(r, args.figures)


if __name__ == "__main__":
    main()
