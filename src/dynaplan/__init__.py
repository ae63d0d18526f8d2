"""dynaplan: model-based reinforcement learning with model-predictive control.

Learn a dynamics model and a reward model from interaction data, then plan through them
with sampling-based optimizers (random shooting, CEM, iCEM, MPPI), replanning at every
step. `register_reward(env_id, fn)` and `register_termination(env_id, fn)` give an
environment a known reward or termination (docs/rewards.md). Names are loaded on first
use, so importing a part (dynaplan.planners.cem, say) loads only what that part needs.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from dynaplan.errors import ConfigError

__all__ = ["ConfigError", "TrainConfig", "__version__", "register_reward",
           "register_termination"]
__version__ = "0.1.0"

# quiet until the user (or the command line) configures logging (dynaplan/logs.py)
logging.getLogger(__name__).addHandler(logging.NullHandler())

_LAZY = {"TrainConfig": "dynaplan.config",
         "register_reward": "dynaplan.envs.functions",
         "register_termination": "dynaplan.envs.functions"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dynaplan' has no attribute {name!r}")
