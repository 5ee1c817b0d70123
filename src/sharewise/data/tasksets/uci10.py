"""UCI-10 (Sec. 4.2, Fig. 5): ten superficially unrelated classification tasks.

Preprocessing (paper App. A.2, plus what it leaves open):
- features min-max scaled to [0, 1], fitted on each task's training split (no leakage);
- German credit as UCI's 24-feature numeric version (``german.data-numeric``);
- missing values (heart-cleveland, hepatitis) median-imputed (see ``sharewise.data.uci``);
- one fixed split per task from ``split_seed`` (independent of the run seed, so all trials and
  all schemes see the same split). The paper's "80-20 split" has no separate validation set; we
  keep its 20 % held out as the test split and carve ``val_fraction`` of the whole set out of the
  80 % for checkpoint selection, so the reported error is never the one the checkpoint was
  chosen on. Stratified by class.
"""

from __future__ import annotations

from collections.abc import Sequence

from sharewise.data.tasksets._registry import make_task, register_taskset, resolve_data_dir, three_way_split
from sharewise.tasks.spec import TaskData


@register_taskset("uci10")
def build_uci10(*, data_dir: str | None = None, seed: int = 0, names: Sequence[str] | None = None,
                val_fraction: float = 0.1, test_fraction: float = 0.2, split_seed: int = 0) -> list[TaskData]:
    from sharewise.data.uci import UCI10_NAMES, load_uci

    root = resolve_data_dir(data_dir, "UCI-10")
    tasks = []
    for offset, name in enumerate(names or UCI10_NAMES):
        table = load_uci(name, root)
        splits = three_way_split(table.y, val_fraction, test_fraction, split_seed + offset, stratify=True)
        kind = "multiclass"  # the paper uses softmax heads for every UCI task, binary ones included
        tasks.append(make_task(name, kind, table.n_classes, table.x, table.y, splits,
                               notes={"source": str(table.source), "preprocessing": table.notes}))
    return tasks
