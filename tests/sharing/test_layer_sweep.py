"""App. A.5 layer sweep: s(t, j, k) set to each value, everything else as learned."""

from __future__ import annotations

import pytest
import torch

from sharewise.components.layer_bank import DenseLayerBank
from sharewise.errors import ConfigError
from sharewise.sharing import CoreSpec, create_scheme
from sharewise.sharing.layer_sweep import layer_sweep


def _reference(core, x: torch.Tensor, task: int, scales: torch.Tensor) -> torch.Tensor:
    """Eq. 7 written as a loop, with explicit scales [J, D] for one task."""
    y = x
    for k in range(core.depth):
        y = sum(scales[j, k] * core.bank.forward_one(j, y) for j in range(core.bank.n_layers))
    return y


def test_sweep_sets_one_scale_and_restores_the_logits() -> None:
    torch.manual_seed(0)
    core = create_scheme("soft_ordering", CoreSpec(lambda n: DenseLayerBank(n, 6), 3, (6,), 0.5), 2,
                         options={"scale_fn": "sigmoid"})
    with torch.no_grad():
        core.logits.normal_()
    before = core.logits.clone()
    x = torch.randn(5, 6)
    out = layer_sweep(core, x, task=1, layer=2, depth=0, values=[0.0, 0.5, 1.0])
    assert out.shape == (3, 5, 6)
    assert torch.equal(core.logits, before)
    for i, v in enumerate([0.0, 0.5, 1.0]):
        scales = torch.sigmoid(before[1]).clone()
        scales[2, 0] = v
        assert torch.allclose(out[i], _reference(core, x, 1, scales), atol=1e-5)


def test_sweep_needs_sigmoid_scales() -> None:
    core = create_scheme("soft_ordering", CoreSpec(lambda n: DenseLayerBank(n, 4), 2, (4,), 0.0), 2)
    with pytest.raises(ConfigError, match="scale_fn=sigmoid"):
        layer_sweep(core, torch.randn(3, 4), 0, 0, 0, [0.5])
