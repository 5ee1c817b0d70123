"""Run configuration: schema, validation, YAML and overrides."""

from sharewise.config.io import apply_overrides, read_yaml
from sharewise.config.schema import (
    CoreConfig,
    EncoderConfig,
    HeadConfig,
    ModelConfig,
    RunConfig,
    TasksConfig,
    TrainConfig,
)
from sharewise.config.validate import config_to_dict, parse_config

__all__ = [
    "CoreConfig", "EncoderConfig", "HeadConfig", "ModelConfig", "RunConfig", "TasksConfig",
    "TrainConfig", "apply_overrides", "config_to_dict", "parse_config", "read_yaml",
]
