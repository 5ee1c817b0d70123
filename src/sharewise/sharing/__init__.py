"""How tasks share parameters: the registered sharing schemes."""

from sharewise.sharing._registry import (
    available_schemes,
    create_scheme,
    register_scheme,
    scheme_class,
    scheme_options,
)
from sharewise.sharing._gumbel import TemperatureSchedule
from sharewise.sharing.base import SharingScheme
from sharewise.sharing.branched import Branched
from sharewise.sharing.core_spec import CoreSpec, check_reorderable
from sharewise.sharing.cross_stitch import CrossStitch
from sharewise.sharing.gumbel_matrix import FixedAllocation, GumbelMatrix, no_sharing_allocation
from sharewise.sharing.hard import Parallel, SingleTask
from sharewise.sharing.nddr import NDDR
from sharewise.sharing.permuted import Permuted
from sharewise.sharing.soft_ordering import SoftOrdering

__all__ = [
    "NDDR",
    "Branched",
    "CoreSpec",
    "CrossStitch",
    "FixedAllocation",
    "GumbelMatrix",
    "Parallel",
    "Permuted",
    "SharingScheme",
    "SingleTask",
    "SoftOrdering",
    "TemperatureSchedule",
    "available_schemes",
    "check_reorderable",
    "create_scheme",
    "no_sharing_allocation",
    "register_scheme",
    "scheme_class",
    "scheme_options",
]
