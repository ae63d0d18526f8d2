"""dynaplan: model-based reinforcement learning with model-predictive control.

Learn a dynamics model and a reward model from interaction data, then plan through them
with sampling-based optimizers (random shooting, CEM, iCEM, MPPI), replanning at every
step. The public API (docs/python.md):

    run = dynaplan.train(env="Pendulum-v1", preset="pets", iterations=3)   # api.py
    agent = dynaplan.load(run.run_dir)           # .act(obs [O]) -> [A], .make_env()
    dynaplan.resume(run.run_dir, iterations=5)
    controller = dynaplan.mpc(dynamics, reward, action_low, action_high)  # known_model.py

`register_reward(env_id, fn)` and `register_termination(env_id, fn)` give an environment
a known reward or termination (docs/rewards.md). Names are loaded on first use, so
`import dynaplan` loads neither torch nor gymnasium, and importing a part
(dynaplan.planners.cem, say) loads only what that part needs.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from dynaplan.errors import ConfigError, TrainingError

if TYPE_CHECKING:  # what the lazy names are, for type checkers
    from dynaplan.agent import MPCAgent
    from dynaplan.api import Agent, Run, load, resume, train
    from dynaplan.config import TrainConfig
    from dynaplan.envs.functions import register_reward, register_termination
    from dynaplan.known_model import mpc, objective_from_functions
    from dynaplan.objective import ModelObjective
    from dynaplan.planners import (
        PLANNERS,
        CEMPlanner,
        ICEMPlanner,
        MPPIPlanner,
        Plan,
        Planner,
        RandomShootingPlanner,
    )

__all__ = [
    "PLANNERS",
    "Agent",
    "CEMPlanner",
    "ConfigError",
    "ICEMPlanner",
    "MPCAgent",
    "MPPIPlanner",
    "ModelObjective",
    "Plan",
    "Planner",
    "RandomShootingPlanner",
    "Run",
    "TrainConfig",
    "TrainingError",
    "__version__",
    "load",
    "mpc",
    "objective_from_functions",
    "register_reward",
    "register_termination",
    "resume",
    "train",
]
__version__ = "0.1.0"

# quiet until the user (or the command line) configures logging (dynaplan/logs.py)
logging.getLogger(__name__).addHandler(logging.NullHandler())

_LAZY = {
    "Agent": "dynaplan.api", "Run": "dynaplan.api", "load": "dynaplan.api",
    "resume": "dynaplan.api", "train": "dynaplan.api",
    "mpc": "dynaplan.known_model", "objective_from_functions": "dynaplan.known_model",
    "ModelObjective": "dynaplan.objective", "MPCAgent": "dynaplan.agent",
    "TrainConfig": "dynaplan.config",
    "register_reward": "dynaplan.envs.functions",
    "register_termination": "dynaplan.envs.functions",
    **{name: "dynaplan.planners" for name in ("PLANNERS", "CEMPlanner", "ICEMPlanner",
                                              "MPPIPlanner", "Plan", "Planner",
                                              "RandomShootingPlanner")},
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dynaplan' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
