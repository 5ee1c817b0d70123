"""The structure of a run is drawn by its scheme's renderer (found through the registry)."""

from __future__ import annotations

from sharewise.reporting.structure import scheme_renderer, structure_figures
from sharewise.sharing import SharingScheme
from sharewise.sharing.branched import Branched
from sharewise.sharing.gumbel_matrix import FixedAllocation, GumbelMatrix
from sharewise.sharing.soft_ordering import SoftOrdering


def test_each_run_finds_its_schemes_class() -> None:
    assert scheme_renderer({"scheme": "soft_ordering"}) is SoftOrdering
    assert scheme_renderer({"scheme": "soft_ordering_uniform"}) is SoftOrdering
    assert scheme_renderer({"scheme": "gumbel_matrix"}) is GumbelMatrix
    assert scheme_renderer({"scheme": "shared_bottom"}) is FixedAllocation
    assert scheme_renderer({"scheme": "branched"}) is Branched
    assert scheme_renderer({"scheme": "no_longer_installed"}) is SharingScheme  # shown as data


def test_renderers_draw_their_keys_and_leave_the_rest_as_data() -> None:
    soft = {"scheme": "soft_ordering", "tasks": {"a": {}, "b": {}},
            "structure": {"tasks": ["a", "b"], "scales": [[[0.5, 0.5], [0.5, 0.5]]] * 2, "candidates": ["W1", "W2"],
                          "scale_fn": "softmax"}}
    figures, rest = structure_figures(soft)
    assert [f.name for f in figures] == ["soft_order", "layer_usage"]
    assert rest == {"tasks": ["a", "b"], "scale_fn": "softmax"}
    tree = {"scheme": "branched", "structure": {"tasks": ["a", "b"], "tree": {"partitions": [[["a", "b"]], [["a"], ["b"]]]}}}
    figures, rest = structure_figures(tree)
    assert [f.name for f in figures] == ["tree"] and rest["tree"]["partitions"][1] == [["a"], ["b"]]
    figures, rest = structure_figures({"scheme": "parallel", "structure": {"tasks": ["a"], "x": 1}})
    assert figures == [] and rest == {"tasks": ["a"], "x": 1}
