"""Branched networks: parameter count = tree_params, equivalence to naive per-task loops and to
``parallel``, tree loading from tree.json and config overrides, and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sharewise.analysis import tree_params
from sharewise.config import apply_overrides, parse_config
from sharewise.errors import ConfigError
from sharewise.pipelines.affinity import parameter_counts
from sharewise.sharing import create_scheme
from sharewise.sharing.branched import Branched
from tests.sharing._branched_helpers import build, conv_core, dense_core

TREES = [
    [[[0, 1, 2, 3]]] * 3,
    [[[0, 1, 2, 3]], [[0, 1], [2, 3]], [[0], [1], [2, 3]]],
    [[[0, 1, 2], [3]], [[0, 1], [2], [3]], [[0], [1], [2], [3]]],
    [[[0], [1], [2], [3]]] * 3,
]


@pytest.mark.parametrize("tree", TREES)
def test_tree_params_equals_the_built_networks_parameter_count(tree: list) -> None:
    blocks, heads = parameter_counts(build("single_task"), ["a", "b", "c", "d"])
    assert blocks == [4 * 4 * 9 + 4] * 3  # conv 3x3, 4 -> 4 channels, + bias
    model = build("branched", tree=tree)
    assert tree_params(tree, blocks, heads) == sum(p.numel() for p in model.parameters())


def _naive(scheme: Branched, x: torch.Tensor, ids: list[int]) -> torch.Tensor:
    """Each task alone through the copies of its groups (the tree read literally)."""
    outs = []
    for row, t in enumerate(ids):
        h = x[row]
        for d in range(scheme.depth):
            h = scheme.bank.forward_one(scheme.layer_of[d][scheme.group_of[d][t]], h)
        outs.append(h)
    return torch.stack(outs)


@pytest.mark.parametrize("core", [conv_core(), dense_core(depth=3)], ids=["conv", "dense"])
@pytest.mark.parametrize("tree", TREES[1:3])
def test_forward_equals_a_per_task_loop_for_shared_and_distinct_inputs(core, tree) -> None:
    torch.manual_seed(0)
    scheme = create_scheme("branched", core, 4, options={"tree": tree})
    distinct = torch.randn(4, 3, *core.feature_shape)
    shared = distinct[:1].expand(4, *distinct.shape[1:])
    for x in (distinct, shared):
        torch.testing.assert_close(scheme(x), _naive(scheme, x, [0, 1, 2, 3]), rtol=1e-5, atol=1e-6)
    sub = distinct[[3, 1]]
    torch.testing.assert_close(scheme(sub, [3, 1]), _naive(scheme, sub, [3, 1]), rtol=1e-5, atol=1e-6)


def test_module_methods_still_work() -> None:
    model = build("branched", tree=TREES[1]).to(torch.float64)  # nn.Module._apply must not be shadowed
    assert model.scheme.bank.layers[0].conv.weight.dtype == torch.float64


def test_shared_encoder_equals_parallel_with_the_same_weights() -> None:
    torch.manual_seed(0)
    core = conv_core()
    par = create_scheme("parallel", core, 4)
    enc = create_scheme("shared_encoder", core, 4)
    enc.bank.load_state_dict(par.bank.state_dict())
    x = torch.randn(4, 3, *core.feature_shape)
    torch.testing.assert_close(enc(x), par(x))
    torch.testing.assert_close(enc(x[:1].expand_as(x)), par(x[:1].expand_as(x)))
    assert sum(p.numel() for p in enc.parameters()) == sum(p.numel() for p in par.parameters())


def test_every_parameter_gets_a_gradient() -> None:
    model = build("branched", tree=TREES[1])
    x = torch.rand(4, 5, 1, 8, 8)
    out = model(x)
    assert out.shape == (4, 5, 3) and torch.isfinite(out).all()
    out.square().sum().backward()
    for name, p in model.named_parameters():
        if name.startswith("heads"):
            continue  # padded head columns get no gradient by design
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_tree_json_with_names_via_the_config_override(tmp_path: Path) -> None:
    path = tmp_path / "tree.json"
    path.write_text(json.dumps({"tasks": ["a", "b", "c", "d"],
                                "partitions": [[["a", "b", "c", "d"]], [["a", "b"], ["c", "d"]],
                                               [["a"], ["b"], ["c", "d"]]]}))
    from tests.sharing._branched_helpers import conv_cfg

    cfg = parse_config(apply_overrides(conv_cfg("branched"), [f"scheme_options.tree={path}"]))
    assert cfg.scheme_options == {"tree": str(path)}
    model = build("branched", tree=str(path))
    assert model.scheme.learned_structure() == {
        "tree": {"partitions": [[["a", "b", "c", "d"]], [["a", "b"], ["c", "d"]], [["a"], ["b"], ["c", "d"]]]},
        "groups_per_depth": [1, 2, 3]}
    path.write_text(json.dumps({"tasks": ["a", "b", "c"], "partitions": [[["a", "b", "c"]]] * 3}))
    with pytest.raises(ConfigError, match=r"covers 3 tasks \['a', 'b', 'c'\] but the model has 4"):
        build("branched", tree=str(path))


def test_bad_trees_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="has 2 depths but the core has model.core.depth=3"):
        build("branched", tree=TREES[1][:2])
    with pytest.raises(ConfigError, match="needs scheme_options.tree"):
        build("branched")
    with pytest.raises(ConfigError, match="no tree file at 'nowhere.json'"):
        build("branched", tree="nowhere.json")
