"""Environments: creation with clean errors, their shapes and bounds, known rewards."""

from dynaplan.envs.make import EnvSpec, make_env
from dynaplan.envs.rewards import KNOWN_REWARDS, known_reward

__all__ = ["KNOWN_REWARDS", "EnvSpec", "known_reward", "make_env"]
