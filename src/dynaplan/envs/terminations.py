"""Known termination functions in torch, keyed by environment id.

A termination function maps `(obs [..., O], action [..., A], next_obs [..., O])` to a bool
tensor [...]: True where the environment would report `terminated` after that step
(tested against the environments). Environments without one never terminate
(Pendulum-v1, HalfCheetah-v5: they only truncate at their time limit).
"""

from __future__ import annotations

import torch

from dynaplan.envs.ids import env_id as id_of
from dynaplan.types import TerminationFn


def mountain_car_continuous_termination(
    obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor
) -> torch.Tensor:
    """Goal reached: position >= 0.45 and velocity >= 0 after the step."""
    return (next_obs[..., 0] >= 0.45) & (next_obs[..., 1] >= 0.0)


def inverted_pendulum_termination(
    obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor
) -> torch.Tensor:
    """The pole angle leaves [-0.2, 0.2] rad, or the state is not finite."""
    return ~torch.isfinite(next_obs).all(dim=-1) | (next_obs[..., 1].abs() > 0.2)


KNOWN_TERMINATIONS: dict[str, TerminationFn] = {
    "MountainCarContinuous-v0": mountain_car_continuous_termination,
    "InvertedPendulum-v5": inverted_pendulum_termination,
}


def known_termination(env_id: str) -> TerminationFn | None:
    """The registered termination of `env_id`, or None for one that never terminates."""
    return KNOWN_TERMINATIONS.get(id_of(env_id))
