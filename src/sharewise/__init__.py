"""sharewise: deep multi-task learning in which how tasks share parameters is learned.

The public API is re-exported here explicitly; everything else is an implementation detail.
"""

__version__ = "0.1.0"

from sharewise.assemble import assemble_model  # noqa: E402
from sharewise.builders import build_model  # noqa: E402
from sharewise.config import RunConfig, apply_overrides, parse_config, read_yaml  # noqa: E402
from sharewise.data.tasksets import available_tasksets, build_tasks, register_taskset  # noqa: E402
from sharewise.errors import ConfigError, DataError, SharewiseError, ShapeError, TrainingError  # noqa: E402
from sharewise.model import MultiTaskModel  # noqa: E402
from sharewise.runner import run  # noqa: E402
from sharewise.sharing import (  # noqa: E402
    CoreSpec,
    SharingScheme,
    SoftOrdering,
    available_schemes,
    create_scheme,
    register_scheme,
)
from sharewise.tasks.spec import TaskData  # noqa: E402
from sharewise.training.trainer import Trainer  # noqa: E402

__all__ = [
    "ConfigError", "CoreSpec", "DataError", "MultiTaskModel", "RunConfig", "ShapeError",
    "SharewiseError", "SharingScheme", "SoftOrdering", "TaskData", "Trainer", "TrainingError",
    "__version__", "apply_overrides", "assemble_model", "available_schemes", "available_tasksets", "build_model",
    "build_tasks", "create_scheme", "parse_config", "read_yaml", "register_scheme",
    "register_taskset", "run",
]
