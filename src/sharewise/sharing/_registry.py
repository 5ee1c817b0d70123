"""Scheme registry: one name per scheme, a builder per name, and a clear error for unknown ones.

A scheme is one module in ``sharewise.sharing`` with a builder decorated ``@register_scheme(name)``;
the package is scanned for them (see :mod:`sharewise.registry`, which also says how to register a
scheme that lives outside the package). Builders have the signature
``builder(core: CoreSpec, n_tasks: int, *, seed: int, **options) -> SchemeClass``; their keyword
options are what a config's ``scheme_options`` may set (the config validator checks names, types
and values against the signature), and their return annotation names the scheme class, whose
static methods render the scheme's structure without building it (reports).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from sharewise.errors import ConfigError
from sharewise.registry import OptionCheck, Registry
from sharewise.sharing.base import SharingScheme
from sharewise.sharing.core_spec import CoreSpec

SchemeBuilder = Callable[..., SharingScheme]
SCHEMES: Registry[SchemeBuilder] = Registry("sharing scheme", "sharewise.sharing", "sharewise.schemes")
BUILDER_ARGUMENTS = ("core", "n_tasks", "seed")  # passed by create_scheme, not options


def register_scheme(name: str, check: OptionCheck | None = None) -> Callable[[SchemeBuilder], SchemeBuilder]:
    """Decorator registering ``builder`` under ``name`` (one name per concept); ``check``: value
    rules spanning several options or the rest of the config (see ``sharewise.registry``)."""
    return SCHEMES.register(name, check)


def available_schemes() -> list[str]:
    return SCHEMES.names()


def scheme_builder(name: str) -> SchemeBuilder:
    return SCHEMES.get(name)


def scheme_class(name: str) -> type[SharingScheme]:
    """The class scheme ``name``'s builder returns (its return annotation; the base class if none)."""
    builder = scheme_builder(name)
    try:
        cls = typing.get_type_hints(builder).get("return")
    except Exception:  # noqa: BLE001 - an annotation that does not resolve: no class to ask
        cls = None
    return cls if isinstance(cls, type) and issubclass(cls, SharingScheme) else SharingScheme


def scheme_options(name: str) -> dict[str, inspect.Parameter]:
    """The keyword options a scheme accepts (for config validation)."""
    params = inspect.signature(scheme_builder(name)).parameters
    return {k: p for k, p in params.items() if k not in BUILDER_ARGUMENTS}


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
