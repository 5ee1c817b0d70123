"""Multi-step workflows that train and analyse (they import training; ``analysis`` stays pure)."""

from sharewise.pipelines.affinity import affinity_run, compute_affinity, parameter_counts

__all__ = ["affinity_run", "compute_affinity", "parameter_counts"]
