"""Environments: creation with clean errors (ids, "module:id", factories, kwargs), their
shapes and bounds, where a run's environments come from, known rewards and terminations,
and which reward and termination a run plans with (functions.py)."""

from dynaplan.envs.functions import (
    register_reward,
    register_termination,
    resolve_reward,
    resolve_termination,
)
from dynaplan.envs.ids import env_id
from dynaplan.envs.make import EnvFactory, EnvSpec, make_env
from dynaplan.envs.rewards import KNOWN_REWARDS, SHAPED_REWARDS, known_reward
from dynaplan.envs.source import EnvGiven, EnvSource, env_source, recorded_name
from dynaplan.envs.terminations import KNOWN_TERMINATIONS, known_termination

__all__ = [
    "KNOWN_REWARDS",
    "KNOWN_TERMINATIONS",
    "SHAPED_REWARDS",
    "EnvFactory",
    "EnvGiven",
    "EnvSource",
    "EnvSpec",
    "env_id",
    "env_source",
    "known_reward",
    "known_termination",
    "make_env",
    "recorded_name",
    "register_reward",
    "register_termination",
    "resolve_reward",
    "resolve_termination",
]
