"""Environments: creation with clean errors, their shapes and bounds, known rewards."""

from dynaplan.envs.make import EnvSpec, make_env
from dynaplan.envs.rewards import KNOWN_REWARDS, known_reward
from dynaplan.envs.terminations import KNOWN_TERMINATIONS, known_termination

__all__ = [
    "KNOWN_REWARDS",
    "KNOWN_TERMINATIONS",
    "EnvSpec",
    "known_reward",
    "known_termination",
    "make_env",
]
