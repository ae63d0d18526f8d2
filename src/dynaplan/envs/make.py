"""Create a gymnasium environment by id and describe it (dims and action bounds).

Any environment with Box observation and action spaces works. A bad id or a space
dynaplan cannot plan in becomes a `ConfigError` with one line (and close names). Some
environments get an observation wrapper (envs/wrappers.py: HalfCheetah-v5 gains its x
velocity as a last entry, so its reward is known).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from dynaplan.envs.wrappers import OBSERVATION_WRAPPERS
from dynaplan.errors import ConfigError

# Render without a display (pygame for classic control, EGL/OSMesa for MuJoCo).
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("MUJOCO_GL", "egl")


@dataclass(frozen=True)
class EnvSpec:
    """What planners and models need to know about an environment."""

    env_id: str
    obs_dim: int
    action_dim: int
    action_low: np.ndarray  # [A]
    action_high: np.ndarray  # [A]


def _suggest(env_id: str) -> str:
    close = difflib.get_close_matches(env_id, list(gym.registry.keys()), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def make_env(env_id: str, render: bool = False,
             max_episode_steps: int | None = None) -> tuple[gym.Env, EnvSpec]:
    """Make `env_id`; with `render`, frames come from `env.render()` as RGB arrays; with
    `max_episode_steps`, episodes are truncated after that many steps instead of the
    environment's own limit."""
    if env_id not in gym.registry:
        raise ConfigError(f"unknown environment id {env_id!r}{_suggest(env_id)}")
    try:
        env = gym.make(env_id, render_mode="rgb_array" if render else None,
                       max_episode_steps=max_episode_steps)
    except gym.error.DependencyNotInstalled as exc:
        raise ConfigError(f"environment {env_id!r} needs a missing package: {exc}") from None
    except Exception as exc:
        raise ConfigError(f"environment {env_id!r} could not be created: {exc}") from None
    if env_id in OBSERVATION_WRAPPERS:
        env = OBSERVATION_WRAPPERS[env_id](env)
    obs_space, act_space = env.observation_space, env.action_space
    if not isinstance(act_space, gym.spaces.Box):
        env.close()
        raise ConfigError(
            f"environment {env_id!r} has a {type(act_space).__name__} action space; "
            "dynaplan plans in continuous (Box) action spaces only"
        )
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        env.close()
        raise ConfigError(
            f"environment {env_id!r} needs a flat Box observation space, "
            f"got {obs_space}"
        )
    if len(act_space.shape) != 1 or not (
        np.all(np.isfinite(act_space.low)) and np.all(np.isfinite(act_space.high))
    ):
        env.close()
        raise ConfigError(f"environment {env_id!r} needs a flat, bounded Box action space")
    spec = EnvSpec(
        env_id=env_id,
        obs_dim=int(obs_space.shape[0]),
        action_dim=int(act_space.shape[0]),
        action_low=act_space.low.astype(np.float32),
        action_high=act_space.high.astype(np.float32),
    )
    return env, spec
