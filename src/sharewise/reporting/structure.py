"""The learned structure of a finished run, drawn by its scheme's own renderer.

Reporting never decides how a structure looks from its keys: it asks the run's scheme class
(``SharingScheme.render_structure``) found through the registry. A scheme registered from
outside the package is found after the modules its run's config ``imports`` are imported; a
scheme that cannot be found at all (its module is gone) falls back to the base class, which
shows the structure as data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sharewise.errors import ConfigError
from sharewise.registry import import_modules
from sharewise.sharing.base import SharingScheme, StructureFigure


def scheme_renderer(summary: Mapping[str, Any]) -> type[SharingScheme]:
    """The scheme class of a run's ``summary.json`` (importing its config's ``imports`` first)."""
    from sharewise.sharing._registry import scheme_class

    import_modules((summary.get("config") or {}).get("imports") or [])
    try:
        return scheme_class(str(summary.get("scheme")))
    except ConfigError:
        return SharingScheme


def structure_figures(summary: Mapping[str, Any], records: Sequence[Mapping[str, Any]] = ()
                      ) -> tuple[list[StructureFigure], dict[str, Any]]:
    """The scheme's figures of ``summary["structure"]`` and the part they leave to plain data."""
    structure = dict(summary.get("structure") or {})
    structure.setdefault("tasks", list(summary.get("tasks") or []))
    return scheme_renderer(summary).render_structure(structure, records)
