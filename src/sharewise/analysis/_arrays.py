"""Private helpers shared by the analysis modules: turning user input into float64 arrays."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from sharewise.errors import ConfigError


def as_float64(values: Any, name: str) -> np.ndarray:
    """Return ``values`` (a tensor, array or nested sequence) as a finite float64 numpy array.

    Tensors are detached and moved to the CPU first, so features taken from a model with
    ``requires_grad`` can be passed directly.
    """
    if isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float64).numpy()
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{name} must be numeric (a tensor, array or nested list of numbers), but got "
            f"{type(values).__name__} that numpy cannot convert ({exc}); pass numeric values."
        ) from exc
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ConfigError(
            f"{name} contains {bad} non-finite value(s) (NaN or inf) out of {array.size}; "
            f"remove or repair them (e.g. check the model that produced them) before the analysis."
        )
    return array
