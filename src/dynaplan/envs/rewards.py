"""Known reward functions in torch, keyed by environment id, and shaped planning rewards
(envs/functions.py: which one a run plans with, and registering more).

A reward function maps `(obs [..., O], action [..., A], next_obs [..., O]) -> reward [...]`.
A known reward must equal the environment's own reward for the same transition (tested).
A shaped reward is a planning cost of our own for an environment whose reward gives a
short-horizon planner nothing to rank (`--reward shaped`); runs are still scored by the
environment's reward.
"""

from __future__ import annotations

import torch

from dynaplan.envs.ids import env_id as id_of
from dynaplan.envs.terminations import (
    inverted_pendulum_termination,
    mountain_car_continuous_termination,
)
from dynaplan.errors import ConfigError
from dynaplan.types import RewardFn


def pendulum_reward(
    obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor
) -> torch.Tensor:
    """Pendulum-v1: -(theta^2 + 0.1 theta_dot^2 + 0.001 u^2), theta wrapped to [-pi, pi).

    obs = [cos theta, sin theta, theta_dot] before the step; u is clipped to [-2, 2] as the
    environment does.
    """
    theta = torch.atan2(obs[..., 1], obs[..., 0])
    u = action[..., 0].clamp(-2.0, 2.0)
    return -(theta**2 + 0.1 * obs[..., 2] ** 2 + 0.001 * u**2)


def mountain_car_continuous_reward(
    obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor
) -> torch.Tensor:
    """MountainCarContinuous-v0: 100 on reaching the goal (next position >= 0.45 with
    velocity >= 0), minus 0.1 a^2 on the unclipped action."""
    goal = mountain_car_continuous_termination(obs, action, next_obs)
    return 100.0 * goal.to(action.dtype) - 0.1 * action[..., 0] ** 2


def inverted_pendulum_reward(
    obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor
) -> torch.Tensor:
    """InvertedPendulum-v5: 1 for every step after which the pole is still upright."""
    return (~inverted_pendulum_termination(obs, action, next_obs)).to(action.dtype)


def half_cheetah_reward(
    obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor
) -> torch.Tensor:
    """HalfCheetah-v5: the step's forward x velocity less 0.1 |a|^2. The velocity is the
    last observation entry that dynaplan's make_env appends (envs/wrappers.py)."""
    return next_obs[..., -1] - 0.1 * (action**2).sum(dim=-1)


KNOWN_REWARDS: dict[str, RewardFn] = {
    "Pendulum-v1": pendulum_reward,
    "MountainCarContinuous-v0": mountain_car_continuous_reward,
    "InvertedPendulum-v5": inverted_pendulum_reward,
    "HalfCheetah-v5": half_cheetah_reward,
}


IP_ANGLE_WEIGHT, IP_POSITION_WEIGHT = 0.4, 1.5
"""The shaped InvertedPendulum-v5 reward's weights on (theta / 0.2)^2 and x^2."""


def inverted_pendulum_shaped_reward(
    obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor
) -> torch.Tensor:
    """InvertedPendulum-v5, for planning: the environment's 1 per upright step, less
    0.4 (theta / 0.2)^2 and 1.5 x^2, floored at 0.05, so in [0.05, 1] while upright and 0
    after a fall: staying up always pays more than falling.

    The environment's reward is the same 1 for every step that keeps the pole up, so
    every candidate that survives the horizon ties and the planner's choice among them is
    arbitrary: planning through the true simulator (benchmarks/ip_true_model.py), CEM
    let the cart drift into the end of its rail after 81-137 steps at H = 10 and 356 at
    H = 30; with a reward of this form at H = 30 it balanced all 1000. The pole angle term
    prefers sequences that keep a margin to the 0.2 rad termination, the cart term staying
    near the middle of the rail (|x| <= 1). The cart weight was 0.5 at first: through
    learned models the cart still drifted slowly into the rail, because near the middle
    0.5 x^2 hardly separates the candidates; 1.5 x^2 kept it within |x| <= 0.5-0.8
    (BENCHMARKS.md section 4).
    """
    upright = (~inverted_pendulum_termination(obs, action, next_obs)).to(action.dtype)
    angle, position = next_obs[..., 1] / 0.2, next_obs[..., 0]
    return upright * (1.0 - IP_ANGLE_WEIGHT * angle**2
                      - IP_POSITION_WEIGHT * position**2).clamp(min=0.05)


SHAPED_REWARDS: dict[str, RewardFn] = {
    "InvertedPendulum-v5": inverted_pendulum_shaped_reward,
}


def known_reward(env_id: str) -> RewardFn:
    """The known or registered reward of `env_id`, or a ConfigError naming those that
    exist and how to give one."""
    try:
        return KNOWN_REWARDS[id_of(env_id)]
    except KeyError:
        raise ConfigError(
            f"reward known: {env_id} has no known reward (known for "
            f"{', '.join(sorted(KNOWN_REWARDS))}); give one with --reward module:function "
            "or dynaplan.register_reward(env_id, fn), or use --reward learned"
        ) from None
