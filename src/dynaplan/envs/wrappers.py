"""Observation additions that make an environment's reward a function of its observations.

HalfCheetah-v5 pays its forward x velocity, (x after - x before) / dt, which its
observation leaves out (it holds neither x nor that difference; qvel's first entry is the
velocity at the end of the step, not the average over its 5 physics substeps). PETS
(Chua et al. 2018) met this by adding the velocity to the observation; dynaplan does the
same: `XVelocityObservation` appends the step's `info["x_velocity"]` (0 after a reset),
so `--reward known` computes the reward exactly and a learned model sees it too.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class XVelocityObservation(gym.Wrapper):
    """Appends the last step's x velocity (`info["x_velocity"]`) as a last observation entry."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        space = env.observation_space
        assert isinstance(space, gym.spaces.Box) and len(space.shape) == 1
        self.observation_space = gym.spaces.Box(
            np.append(space.low, -np.inf), np.append(space.high, np.inf), dtype=space.dtype
        )

    def _obs(self, obs: np.ndarray, velocity: float) -> np.ndarray:
        return np.append(obs, velocity).astype(obs.dtype, copy=False)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(**kwargs)
        return self._obs(obs, 0.0), info

    def step(self, action: Any) -> tuple[np.ndarray, Any, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._obs(obs, info["x_velocity"]), reward, terminated, truncated, info


# environment id (the id part of a "module:EnvId" name) -> the wrapper `make_env` puts
# around it
OBSERVATION_WRAPPERS: dict[str, type[gym.Wrapper]] = {
    "HalfCheetah-v5": XVelocityObservation,
}
