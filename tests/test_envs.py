import gymnasium as gym
import numpy as np
import pytest
import torch

from dynaplan.envs import KNOWN_REWARDS, known_reward, make_env
from dynaplan.errors import ConfigError


@pytest.mark.parametrize("env_id", sorted(KNOWN_REWARDS))
def test_known_reward_equals_the_environment_reward(env_id):
    env, _ = make_env(env_id)
    env.reset(seed=0)
    env.action_space.seed(0)
    fn = known_reward(env_id)
    obs, _ = env.reset(seed=0)
    rows = []
    for _ in range(300):
        # actions beyond the bounds too: the env clips them, so must the reward
        action = env.action_space.sample() * 1.5
        nxt, reward, term, trunc, _ = env.step(action)
        rows.append((obs, action, nxt, reward))
        obs = nxt if not (term or trunc) else env.reset()[0]
    o, a, n, r = (torch.as_tensor(np.array(x), dtype=torch.float32) for x in zip(*rows))
    assert torch.allclose(fn(o, a, n), r, atol=1e-4)


def test_make_env_describes_spaces():
    _, spec = make_env("Pendulum-v1")
    assert (spec.obs_dim, spec.action_dim) == (3, 1)
    assert spec.action_low[0] == -2 and spec.action_high[0] == 2


def test_unknown_env_id_suggests_close_names():
    with pytest.raises(ConfigError, match="Pendulum-v1"):
        make_env("Pendulum-v9")


def test_discrete_action_space_is_refused():
    with pytest.raises(ConfigError, match="Discrete"):
        make_env("CartPole-v1")


def test_known_reward_missing_is_an_error():
    assert "MountainCarContinuous-v0" in gym.registry
    with pytest.raises(ConfigError, match="no known reward"):
        known_reward("MountainCarContinuous-v0")
