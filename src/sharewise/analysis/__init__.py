"""Pure analysis functions: RSA task affinity, branched-tree search, Delta_m, task embeddings."""

from sharewise.analysis.delta_m import delta_m, delta_m_per_task
from sharewise.analysis.embeddings import (
    cosine_similarity_matrix,
    identical_embedding_clusters,
    task_embeddings,
)
from sharewise.analysis.rsa import rdm_stack, representation_dissimilarity, task_affinity
from sharewise.analysis.tree_search import beam_search, enumerate_trees, exhaustive_search
from sharewise.analysis.trees import (
    tree_cost,
    tree_from_dict,
    tree_params,
    tree_to_dict,
    validate_tree,
)

__all__ = [
    "beam_search",
    "cosine_similarity_matrix",
    "delta_m",
    "delta_m_per_task",
    "enumerate_trees",
    "exhaustive_search",
    "identical_embedding_clusters",
    "rdm_stack",
    "representation_dissimilarity",
    "task_affinity",
    "task_embeddings",
    "tree_cost",
    "tree_from_dict",
    "tree_params",
    "tree_to_dict",
    "validate_tree",
]
