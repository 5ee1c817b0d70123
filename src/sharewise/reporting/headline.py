"""Seed statistics and learned structure of finished runs, for the papers' headline experiments.

Reads only what a run directory holds (``summary.json``, ``metrics.jsonl``), so it works on the
long runs of any experiment (``benchmarks/repro_headline.py`` prints the markdown). Definitions:

- **Interval**: mean +- t_{0.975, n-1} * s / sqrt(n) over seeds (``describe`` of
  ``sharewise compare``); n = 1 gives no interval.
- **Paired test** (:func:`paired_test`): Student's paired t-test over the seeds both schemes ran
  (``scipy.stats.ttest_rel``, two-sided), with the mean difference and its 95 % t-interval.
- **Flatness** (:func:`curve_flatness`): the mean validation error (validation loss for tasks
  without an error) at the last evaluation at or before ``frac`` (75 %) of the steps, and at the
  last evaluation. The curve is *flat* when it fell by less than ``tol`` (5 %) of its value at
  75 %; a rising curve is flat too (no further gain: converged or over-fitting).
- **Soft orders** (:func:`soft_order_summary`): per task, the argmax layer at each depth
  (``"3124"``: layer W3 at depth 1, ...), the mean normalised entropy of the scales over
  (task, depth) (1 = uniform, 0 = one layer), the mean largest scale, and the layer usage by depth
  (mean scale over tasks, the paper's Fig. 6b).
- **Allocations** (:func:`allocation_bits`): per task the 0/1 connections of each routed layer,
  layers separated by ``|``.
- **Type split** (:func:`type_split`): tasks are grouped by a note of their data (4-MNISTs:
  ``rotation``). A *layer* is split by type when, in that layer, all tasks of a group have one
  pattern and the groups' patterns all differ. A run *splits the types* (e.g. MNIST from
  MNIST-rot) when, over the whole allocation, every group's tasks share one pattern and the
  groups' patterns all differ (the strict rule of ``benchmarks/repro_gumbel_results.py``).
- **Families** (:func:`family_ari`): adjusted Rand index of an agglomerative clustering (cosine
  distance, average linkage, as many clusters as families) of the binary task embeddings against
  the task families (``notes["family"]``), as in results §2.5.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sharewise.errors import DataError
from sharewise.reporting.compare import describe  # the interval of `sharewise compare`
from sharewise.training.io import read_jsonl


@dataclass
class Run:
    """One finished run directory."""

    path: Path
    summary: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    show_steps: bool = False  # set by load_runs where runs of one scheme differ in length

    @property
    def seed(self) -> int:
        return int(self.summary["seed"])

    @property
    def label(self) -> str:
        """The scheme, with the budget when one was set (``gumbel_matrix b=0.75``), and the step count
        of a run continued by ``sharewise extend`` (``parallel, extended to 10000 steps``): an extension
        of seed 0 is not another seed of the runs it continues, so it gets its own row. Likewise runs
        of one scheme trained for different step counts (``permuted, 20000 steps``): pooling them
        into one mean would mix two points of the learning curve."""
        budget = (self.summary.get("structure") or {}).get("budget")
        label = f"{self.summary['scheme']} b={budget}" if budget else str(self.summary["scheme"])
        if self.summary.get("extended_from"):
            label += f", extended to {self.summary['steps']} steps"
        elif self.show_steps:
            label += f", {self.summary['steps']} steps"
        return label


def load_runs(root: str | Path) -> list[Run]:
    """Every finished run (a ``summary.json``) under ``root``, sorted by path; where one scheme's runs
    differ in step count, each is labelled with its count so that the table keeps them apart."""
    root = Path(root)
    paths = [root / "summary.json"] if (root / "summary.json").is_file() else sorted(root.rglob("summary.json"))
    if not paths:
        raise DataError(f"no finished run under {str(root)!r} (no summary.json); pass the --out directory of "
                        f"`sharewise run` or `sharewise compare`")
    runs = []
    for p in paths:
        try:
            summary = json.loads(p.read_text())
        except json.JSONDecodeError as err:
            raise DataError(f"{p}: not valid JSON ({err}); the run directory is damaged") from None
        metrics = p.parent / "metrics.jsonl"
        runs.append(Run(p.parent, summary, read_jsonl(metrics) if metrics.is_file() else []))
    lengths: dict[str, set[int]] = {}
    for run in runs:
        lengths.setdefault(run.label, set()).add(int(run.summary["steps"]))
    for run in runs:
        run.show_steps = len(lengths[run.label]) > 1
    return runs


def paired_test(a: Mapping[int, float], b: Mapping[int, float]) -> dict[str, Any] | None:
    """Paired t-test of a - b over the seeds both have (None with fewer than 2 common seeds)."""
    from scipy import stats

    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        return None
    diffs = [a[s] - b[s] for s in seeds]
    d = describe(diffs)
    if d["std"] == 0.0:  # every seed the same difference: the t statistic is undefined
        t, p = (math.inf if d["mean"] else math.nan), (0.0 if d["mean"] else 1.0)
    else:
        res = stats.ttest_rel([a[s] for s in seeds], [b[s] for s in seeds])
        t, p = float(res.statistic), float(res.pvalue)
    return {"seeds": seeds, "diffs": diffs, "mean_diff": d["mean"], "ci95": d["ci95"], "t": t, "p": p,
            "n": len(seeds)}


def _mean_val(record: Mapping[str, Any]) -> float | None:
    if record.get("mean_val_error") is not None:
        return float(record["mean_val_error"])
    return float(record["val_loss"]) if record.get("val_loss") is not None else None


def curve_flatness(records: Sequence[Mapping[str, Any]], steps: int, frac: float = 0.75,
                   tol: float = 0.05) -> dict[str, Any] | None:
    """Validation error at ``frac`` of ``steps`` vs at the end (see the module docstring)."""
    points = [(int(r["step"]), v) for r in records if isinstance(r.get("step"), int) and (v := _mean_val(r)) is not None]
    if not points:
        return None
    early = [p for p in points if p[0] <= frac * steps]
    if not early:
        return None
    s0, v0 = early[-1]
    s1, v1 = points[-1]
    change = v1 - v0
    return {"step_early": s0, "early": v0, "step_last": s1, "last": v1, "change": change,
            "flat": s1 > s0 and -change < tol * abs(v0),
            "metric": "error" if records[-1].get("mean_val_error") is not None else "loss"}


def validation_curves(runs: Sequence[Run]) -> dict[str, list[list[tuple[int, float]]]]:
    """Label -> one ``[(step, mean validation error), ...]`` per run (the validation loss where a run
    logged no error): the learning curves behind the flatness check, for a figure."""
    curves: dict[str, list[list[tuple[int, float]]]] = {}
    for run in runs:
        points = [(int(r["step"]), v) for r in run.records
                  if isinstance(r.get("step"), int) and (v := _mean_val(r)) is not None]
        if points:
            curves.setdefault(run.label, []).append(points)
    return curves


def plot_validation_curves(runs: Sequence[Run], path: str | Path, title: str = "", frac: float = 0.75) -> Path:
    """The mean validation curve per label (line: mean over runs; band: min-max over runs), with a
    dotted line at ``frac`` of each planned step count: the flatness check (``curve_flatness``)
    compares the curve there with its end."""
    from sharewise.reporting import plots

    curves = validation_curves(runs)
    if not curves:
        raise DataError(f"no validation curve to plot for {title or 'these runs'}: no metrics.jsonl holds a "
                        f"validation error or loss")
    fig, ax = plots.plot_error_curves(curves, ylabel="mean validation error", title=title or "Validation error")
    for steps in sorted({int(r.summary["steps"]) for r in runs if isinstance(r.summary.get("steps"), int)}):
        ax.axvline(frac * steps, color="0.5", linestyle=":", linewidth=1,
                   label=f"{round(100 * frac)} % of {steps} steps")
    ax.legend(fontsize=7)
    plots.save(fig, path)
    plots.plt.close(fig)
    return Path(path)


def soft_order_summary(scales: Sequence[Sequence[Sequence[float]]]) -> dict[str, Any]:
    """``scales [T][J][D]`` (task, layer, depth) -> argmax orders, entropy, usage by depth."""
    import numpy as np

    s = np.asarray(scales, dtype=float)  # [T, J, D]
    n_layers = s.shape[1]
    p = s / s.sum(axis=1, keepdims=True)  # sigmoid scales do not sum to 1
    ent = -(p * np.log(np.clip(p, 1e-12, None))).sum(axis=1) / math.log(n_layers) if n_layers > 1 else np.zeros(1)
    argmax = s.argmax(axis=1)  # [T, D]
    orders = ["".join(str(j + 1) for j in row) for row in argmax]
    return {"orders": orders, "distinct_orders": len(set(orders)), "entropy": float(ent.mean()),
            "max_scale": float(s.max(axis=1).mean()), "usage": s.mean(axis=0).tolist()}  # usage [J][D]


def allocation_bits(allocation: Mapping[str, Sequence[Sequence[int]]]) -> list[str]:
    """``{task: [[0/1] * C_l] * L}`` -> one ``"1101|1111|0111"`` string per task (task order)."""
    return ["|".join("".join(str(int(v)) for v in layer) for layer in allocation[k])
            for k in sorted(allocation, key=int)]


def type_split(allocation: Mapping[str, Sequence[Sequence[int]]], groups: Sequence[Sequence[int]]) -> dict[str, Any]:
    """Which layers split the task groups, and whether the whole allocation does."""
    per_task = [allocation[k] for k in sorted(allocation, key=int)]
    n_layers = len(per_task[0])

    def splits(pattern: Any) -> bool:
        within = all(len({pattern(t) for t in g}) == 1 for g in groups)
        across = len({pattern(g[0]) for g in groups}) == len(groups)
        return within and across

    layers = [l for l in range(n_layers) if splits(lambda t, l=l: tuple(per_task[t][l]))]
    whole = splits(lambda t: tuple(tuple(layer) for layer in per_task[t]))
    return {"split_layers": layers, "split": whole}


def task_groups(summary: Mapping[str, Any], note: str) -> tuple[list[str], list[list[int]]] | None:
    """Tasks grouped by ``data[task]["notes"][note]`` (in task order), or None if no task has it."""
    names = (summary.get("structure") or {}).get("tasks") or list(summary["tasks"])
    values = [((summary.get("data") or {}).get(n, {}).get("notes") or {}).get(note) for n in names]
    if all(v is None for v in values):
        return None
    keys = list(dict.fromkeys(str(v) for v in values))
    return keys, [[i for i, v in enumerate(values) if str(v) == k] for k in keys]


def family_ari(summary: Mapping[str, Any], note: str = "family") -> float | None:
    """ARI of the allocation's task clusters against the families (None without allocation or notes)."""
    structure = summary.get("structure") or {}
    found = task_groups(summary, note)
    if "allocation" not in structure or found is None:
        return None
    import numpy as np
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.metrics import adjusted_rand_score

    keys, groups = found
    alloc = structure["allocation"]
    emb = np.asarray([[v for layer in alloc[k] for v in layer] for k in sorted(alloc, key=int)], dtype=float)
    emb = emb + 1e-9 * (emb.sum(1, keepdims=True) == 0)  # keep an all-zero row clusterable
    labels = np.empty(len(emb), dtype=int)
    for i, g in enumerate(groups):
        labels[g] = i
    pred = AgglomerativeClustering(n_clusters=len(keys), metric="cosine", linkage="average").fit_predict(emb)
    return float(adjusted_rand_score(labels, pred))


def metric_value(summary: Mapping[str, Any], accuracy: bool = False) -> float:
    """Mean test error in % (or accuracy in % with ``accuracy``); the test loss for regression runs."""
    err = summary.get("mean_test_error")
    if err is None:
        return float(summary["mean_test_loss"])
    return 100.0 * (1.0 - err) if accuracy else 100.0 * err


def _pm(d: Mapping[str, Any], digits: int = 2) -> str:
    return f"{d['mean']:.{digits}f}" + (f" ± {d['ci95']:.{digits}f}" if d["ci95"] is not None else "")


def structure_line(run: Run, group_note: str | None = None) -> str:
    """One line of markdown with the run's learned structure (soft orders, allocations, splits)."""
    s = run.summary.get("structure") or {}
    parts = []
    if "scales" in s:
        so = soft_order_summary(s["scales"])
        parts.append(f"soft order: entropy {so['entropy']:.3f} (1 = uniform), mean max scale {so['max_scale']:.3f}, "
                     f"{so['distinct_orders']} distinct argmax orders; argmax layer per depth per task "
                     f"`{' '.join(so['orders'])}`")
    if "permutations" in s:
        perms = ["".join(str(j + 1) for j in row) for row in s["permutations"]]
        parts.append(f"orders ({len(set(perms))} distinct) `{' '.join(perms)}`")
    if "allocation" in s:
        parts.append(f"active {s.get('active_fraction', float('nan')):.3f}; allocation `{' '.join(allocation_bits(s['allocation']))}`")
        found = task_groups(run.summary, group_note) if group_note and "pattern" not in s else None
        if found is not None:
            keys, groups = found
            ts = type_split(s["allocation"], groups)
            parts.append(f"split {' / '.join(keys)} ({group_note}): {'yes' if ts['split'] else 'no'}; "
                         f"layers split by type {ts['split_layers'] or 'none'}")
        ari = family_ari(run.summary) if task_groups(run.summary, "family") else None
        if ari is not None:
            parts.append(f"ARI vs families {ari:.3f}")
    return "; ".join(parts) if parts else "fixed structure"


def headline_markdown(runs: Sequence[Run], title: str = "", accuracy: bool = False,
                      paired: Sequence[tuple[str, str]] = (), group_note: str | None = None,
                      frac: float = 0.75, tol: float = 0.05) -> str:
    """The markdown table (mean, 95 % interval, per seed, flatness, wall time per scheme), the
    structure per run, and the paired tests ``paired`` (scheme labels a, b: a - b)."""
    metric = "test accuracy %" if accuracy else "test error %"
    if runs and runs[0].summary.get("mean_test_error") is None:
        metric = "test loss"
    by_label: dict[str, list[Run]] = {}
    for run in sorted(runs, key=lambda r: (r.label, r.seed)):
        group = by_label.setdefault(run.label, [])
        if group and group[-1].seed == run.seed:  # counting one seed twice would shrink the interval
            raise DataError(f"{group[-1].path} and {run.path} are both {run.label!r} seed {run.seed}; "
                            f"point the table at a folder that holds each (scheme, seed) once")
        group.append(run)
    lines = [f"### {title}" if title else "", "",
             f"| scheme | n | {metric}: mean ± 95 % CI | per seed | mean val. {'error %' if metric != 'test loss' else 'loss'} at {int(frac * 100)} % -> 100 % of steps "
             f"(flat runs) | best step | wall s / run |", "|---|---|---|---|---|---|---|"]
    values: dict[str, dict[int, float]] = {}
    for label, group in by_label.items():
        vals = {r.seed: metric_value(r.summary, accuracy) for r in group}
        values[label] = vals
        d = describe(list(vals.values()))
        flats = [curve_flatness(r.records, int(r.summary["steps"]), frac, tol) for r in group]
        known = [f for f in flats if f is not None]
        curve = "n/a"
        if known:
            scale = 100.0 if known[0]["metric"] == "error" else 1.0
            early = sum(f["early"] for f in known) / len(known) * scale
            last = sum(f["last"] for f in known) / len(known) * scale
            curve = f"{early:.2f} -> {last:.2f} ({sum(f['flat'] for f in known)}/{len(known)})"
        seeds = ", ".join(f"s{s}: {v:.2f}" for s, v in vals.items())
        best = ", ".join(str(r.summary.get("best_step")) for r in group)
        wall = sum(float(r.summary.get("wall_time_s") or 0.0) for r in group) / len(group)
        lines.append(f"| {label} | {d['n']} | {_pm(d)} | {seeds} | {curve} | {best} | {wall:.0f} |")
    if paired:
        lines += ["", f"Paired t-test over seeds ({metric}, a - b):", ""]
        for a, b in paired:
            if a not in values or b not in values:
                lines.append(f"- {a} vs {b}: not both present")
                continue
            res = paired_test(values[a], values[b])
            if res is None:
                lines.append(f"- {a} vs {b}: fewer than 2 common seeds")
                continue
            ci = f" ± {res['ci95']:.2f}" if res["ci95"] is not None else ""
            lines.append(f"- {a} - {b}: {res['mean_diff']:+.2f}{ci} over seeds {res['seeds']} "
                         f"(t = {res['t']:.2f}, p = {res['p']:.3g}, n = {res['n']})")
    lines += ["", "Learned structure per run:", ""]
    for label, group in by_label.items():
        for r in group:
            lines.append(f"- {label} seed {r.seed}: {structure_line(r, group_note)}")
    return "\n".join(lines).lstrip("\n") + "\n"
