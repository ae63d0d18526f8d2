"""Run configuration: frozen dataclasses nested by concern (sections.py), the flat option
names users write as flags, `--config` keys and sweep keys (flat.py), config files
(files.py)."""

from dynaplan.config.files import load_config_file
from dynaplan.config.flat import (
    OPTIONS,
    Option,
    config_from_values,
    from_dict,
    option_defaults,
    to_dict,
    to_flat,
)
from dynaplan.config.sections import (
    EnsembleConfig,
    ModelConfig,
    PlannerConfig,
    SpeedConfig,
    TrainConfig,
)

__all__ = [
    "OPTIONS",
    "EnsembleConfig",
    "ModelConfig",
    "Option",
    "PlannerConfig",
    "SpeedConfig",
    "TrainConfig",
    "config_from_values",
    "from_dict",
    "load_config_file",
    "option_defaults",
    "to_dict",
    "to_flat",
]
