"""Environments: creation with clean errors, their shapes and bounds, known rewards."""

from dynaplan.envs.make import EnvSpec, make_env
from dynaplan.envs.rewards import KNOWN_REWARDS, SHAPED_REWARDS, known_reward, planning_reward
from dynaplan.envs.terminations import KNOWN_TERMINATIONS, known_termination

__all__ = [
    "KNOWN_REWARDS",
    "KNOWN_TERMINATIONS",
    "SHAPED_REWARDS",
    "EnvSpec",
    "known_reward",
    "known_termination",
    "make_env",
    "planning_reward",
]
