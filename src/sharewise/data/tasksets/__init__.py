"""Named task sets (what a config's ``tasks.builder`` selects)."""

from sharewise.data.tasksets._registry import (
    available_tasksets,
    build_tasks,
    register_taskset,
    resolve_data_dir,
    taskset_builder,
)

__all__ = ["available_tasksets", "build_tasks", "register_taskset", "resolve_data_dir", "taskset_builder"]
