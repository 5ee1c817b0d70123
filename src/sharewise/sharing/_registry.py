"""Scheme registry: one name per scheme, a builder per name, and a clear error for unknown ones.

Builders have the signature ``builder(core: CoreSpec, n_tasks: int, *, seed: int, **options)``;
their keyword options are what a config's ``scheme_options`` may set, so the config validator
checks options against the builder's signature (see ``sharewise.config``).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any

from sharewise.errors import ConfigError
from sharewise.sharing.base import SharingScheme
from sharewise.sharing.core_spec import CoreSpec

SchemeBuilder = Callable[..., SharingScheme]
_SCHEMES: dict[str, SchemeBuilder] = {}


def register_scheme(name: str) -> Callable[[SchemeBuilder], SchemeBuilder]:
    """Decorator registering ``builder`` under ``name`` (one name per concept)."""

    def wrap(builder: SchemeBuilder) -> SchemeBuilder:
        if name in _SCHEMES:
            raise ValueError(f"scheme {name!r} is registered twice")
        _SCHEMES[name] = builder
        return builder

    return wrap


def available_schemes() -> list[str]:
    _load_builtin_schemes()
    return sorted(_SCHEMES)


def scheme_builder(name: str) -> SchemeBuilder:
    _load_builtin_schemes()
    if name not in _SCHEMES:
        close = difflib.get_close_matches(name, list(_SCHEMES), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"unknown sharing scheme {name!r}.{hint} Valid schemes: {', '.join(sorted(_SCHEMES))}."
        )
    return _SCHEMES[name]


def scheme_options(name: str) -> dict[str, inspect.Parameter]:
    """The keyword options a scheme accepts (for config validation)."""
    params = inspect.signature(scheme_builder(name)).parameters
    return {k: p for k, p in params.items() if k not in ("core", "n_tasks", "seed")}


def create_scheme(name: str, core: CoreSpec, n_tasks: int, *, seed: int = 0,
                  options: dict[str, Any] | None = None) -> SharingScheme:
    """Build scheme ``name`` over ``core`` for ``n_tasks`` tasks."""
    builder = scheme_builder(name)
    options = dict(options or {})
    unknown = sorted(set(options) - set(scheme_options(name)))
    if unknown:
        raise ConfigError(
            f"scheme {name!r} does not take option(s) {unknown}; "
            f"valid options: {sorted(scheme_options(name)) or 'none'}."
        )
    return builder(core, n_tasks, seed=seed, **options)


def _load_builtin_schemes() -> None:
    # Importing the modules runs their @register_scheme decorators.
    from sharewise.sharing import hard, permuted, soft_ordering  # noqa: F401
    from sharewise.sharing import gumbel_matrix  # noqa: F401
    from sharewise.sharing import branched, cross_stitch, nddr  # noqa: F401
