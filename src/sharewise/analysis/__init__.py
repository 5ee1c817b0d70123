"""Pure analysis functions: RSA task affinity, branched-tree search, Delta_m, task embeddings.

The names below are loaded on first use (PEP 562 ``__getattr__``): ``rsa`` needs SciPy and
``tree_search`` scikit-learn, about a second of imports together, and every run imports this
package (through the branched scheme's tree helpers) whether or not it analyses anything.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "delta_m": "delta_m",
    "delta_m_per_task": "delta_m",
    "cosine_similarity_matrix": "embeddings",
    "identical_embedding_clusters": "embeddings",
    "task_embeddings": "embeddings",
    "rdm_stack": "rsa",
    "representation_dissimilarity": "rsa",
    "task_affinity": "rsa",
    "beam_search": "tree_search",
    "best_tree": "tree_search",
    "enumerate_trees": "tree_search",
    "exhaustive_search": "tree_search",
    "tree_cost": "trees",
    "tree_from_dict": "trees",
    "tree_params": "trees",
    "tree_to_dict": "trees",
    "validate_tree": "trees",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
