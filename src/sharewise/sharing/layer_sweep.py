"""Layer-behaviour sweeps for soft ordering (Meyerson & Miikkulainen, App. A.5).

To see what layer j does at depth k for task t, the paper replaces each (task, depth) softmax
with independent sigmoids (``scale_fn="sigmoid"``) and sweeps s(t, j, k) across [0, 1] while
every other scale stays as learned. ``layer_sweep`` returns the model's outputs for each value.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from sharewise.errors import ConfigError
from sharewise.sharing.soft_ordering import SoftOrdering


@torch.no_grad()
def layer_sweep(model: nn.Module, x: Tensor, task: int, layer: int, depth: int,
                values: Sequence[float]) -> Tensor:
    """Outputs ``[len(values), B, ...]`` of ``model(x[None], [task])`` with s(task, layer, depth) = v.

    ``model`` is a MultiTaskModel (or any module with a ``scheme`` attribute) whose scheme is a
    sigmoid-scaled SoftOrdering; ``x`` is one task's batch ``[B, *in]``. The model is run in eval
    mode (no dropout) and its logits are restored afterwards.
    """
    core = getattr(model, "scheme", model)
    if not isinstance(core, SoftOrdering) or core.scale_fn != "sigmoid":
        raise ConfigError("layer_sweep needs a soft_ordering core with scheme_options.scale_fn=sigmoid "
                          "(App. A.5: sweeping one softmax entry would change the others)")
    n_candidates, n_depths = core.logits.shape[1:]
    if not (0 <= layer < n_candidates and 0 <= depth < n_depths and 0 <= task < core.n_tasks):
        raise ConfigError(f"layer_sweep: task {task}, layer {layer}, depth {depth} out of range for scales of "
                          f"shape [{core.n_tasks}, {n_candidates}, {n_depths}]")
    was_training = model.training
    model.eval()
    saved = core.logits[task, layer, depth].clone()
    outputs = []
    try:
        for v in values:
            p = min(max(float(v), 1e-7), 1 - 1e-7)
            core.logits[task, layer, depth] = torch.logit(torch.tensor(p))
            outputs.append(model(x.unsqueeze(0), [task])[0])
    finally:
        core.logits[task, layer, depth] = saved
        model.train(was_training)
    return torch.stack(outputs)
