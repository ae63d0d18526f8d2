"""Reward and termination functions as a user would write them, for
tests/test_user_functions.py (named as `--reward tests.user_fns:good_reward` there)."""

import torch


def good_reward(obs, action, next_obs):
    """Pendulum-v1's reward: -(theta^2 + 0.1 theta_dot^2 + 0.001 u^2), before the step."""
    theta = torch.atan2(obs[..., 1], obs[..., 0])
    u = action[..., 0].clamp(-2.0, 2.0)
    return -(theta**2 + 0.1 * obs[..., 2] ** 2 + 0.001 * u**2)


def wrong_reward(obs, action, next_obs):
    """Pendulum-v1's reward without its velocity term: off wherever the pendulum moves."""
    theta = torch.atan2(obs[..., 1], obs[..., 0])
    return -(theta**2)


def wrong_shape_reward(obs, action, next_obs):
    """The right values, one trailing dim too many: [..., 1]."""
    return good_reward(obs, action, next_obs)[..., None]


def flat_only_reward(obs, action, next_obs):
    """Indexes the second dim instead of the last: right on [n, O], wrong on [2, m, O]."""
    return -(obs[:, 1] ** 2)


def nan_reward(obs, action, next_obs):
    """log of a negative number where the pendulum hangs to the left: NaN there."""
    return torch.log(obs[..., 1])


def raising_reward(obs, action, next_obs):
    raise ValueError("this reward is not written yet\nsecond line")


def reacher_reward(obs, action, next_obs):
    """Reacher-v5's reward from the observation after the step (its last two entries are
    fingertip - target): -|fingertip - target| - |a|^2."""
    return -next_obs[..., 8:10].norm(dim=-1) - (action**2).sum(dim=-1)


def upright_termination(obs, action, next_obs):
    """InvertedPendulum-v5 ends when the pole angle leaves [-0.2, 0.2] rad."""
    return ~torch.isfinite(next_obs).all(dim=-1) | (next_obs[..., 1].abs() > 0.2)


def never_termination(obs, action, next_obs):
    """Never ends: misses every termination of InvertedPendulum-v5."""
    return torch.zeros(obs.shape[:-1], dtype=torch.bool, device=obs.device)


def float_termination(obs, action, next_obs):
    """The right transitions, as floats instead of bools."""
    return upright_termination(obs, action, next_obs).float()


def numpy_reward(obs, action, next_obs):
    """Leaves torch: a numpy array, not a tensor."""
    return good_reward(obs, action, next_obs).numpy()


NOT_CALLABLE = 3
