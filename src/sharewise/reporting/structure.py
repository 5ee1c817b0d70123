"""The learned structure of a finished run, drawn by its scheme's own renderer.

Reporting never decides how a structure looks from its keys: it asks the run's scheme class
(``SharingScheme.render_structure``) found through the registry: the package's schemes, installed
plugins (entry points) and modules this process imported (a run's ``imports``, when the same
process ran it). Reading a run directory never imports the modules its files name (a report of
a directory executes none of its code), so a scheme found nowhere falls back to the base class,
which shows the structure as data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sharewise.errors import ConfigError
from sharewise.sharing.base import SharingScheme, StructureFigure


def scheme_renderer(summary: Mapping[str, Any]) -> type[SharingScheme]:
    """The scheme class of a run's ``summary.json`` (the base class when it is not registered)."""
    from sharewise.sharing._registry import scheme_class

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
