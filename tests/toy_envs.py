"""A tiny environment for the tests of bringing your own: importing this module registers
`ToyPoint-v0` (10-step episodes), as a user's package would register its ids.

ToyPoint: a point x on a line, moved by the action (dx = 0.1 a, a in [-1, 1]); the
observation is [x, goal], the reward -(x - goal)^2, so the `goal` kwarg changes both what
the agent sees and what it is paid.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

STEPS = 10


class ToyPoint(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, goal: float = 0.0, render_mode: str | None = None) -> None:
        self.goal = float(goal)
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.x = 0.0

    def _obs(self) -> np.ndarray:
        return np.array([self.x, self.goal], np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = float(self.np_random.uniform(-1.0, 1.0))
        return self._obs(), {}

    def step(self, action):
        self.x += 0.1 * float(np.clip(action[0], -1.0, 1.0))
        return self._obs(), -(self.x - self.goal) ** 2, False, False, {}

    def render(self):
        frame = np.zeros((16, 16, 3), np.uint8)
        frame[8, int(np.clip(8 + 4 * self.x, 0, 15))] = 255
        return frame


gym.register("ToyPoint-v0", entry_point=ToyPoint, max_episode_steps=STEPS)


def make_toy(goal: float = 0.0, render_mode: str | None = None) -> gym.Env:
    """A factory importable as toy_envs:make_toy."""
    return gym.wrappers.TimeLimit(ToyPoint(goal, render_mode), STEPS)


def make_toy_quietly(goal: float = 0.0) -> gym.Env:
    """A factory that takes no render_mode (it renders nothing)."""
    return gym.wrappers.TimeLimit(ToyPoint(goal), STEPS)
