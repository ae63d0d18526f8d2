import gymnasium as gym
import numpy as np
import pytest
import torch

from dynaplan.envs import (
    KNOWN_REWARDS,
    KNOWN_TERMINATIONS,
    known_reward,
    known_termination,
    make_env,
)
from dynaplan.errors import ConfigError


def random_transitions(env_id, n=400, seed=0):
    """(obs, action, next_obs, reward, terminated) of random steps; MountainCar starts half
    of its steps near the goal so that reaching it is covered."""
    env, _ = make_env(env_id)
    env.action_space.seed(seed)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    rows = []
    for _ in range(n):
        if env_id == "MountainCarContinuous-v0" and rng.random() < 0.5:
            env.unwrapped.state = np.array([rng.uniform(0.35, 0.5), rng.uniform(-0.02, 0.05)])
            obs = env.unwrapped.state.astype(np.float32)
        action = env.action_space.sample()
        nxt, reward, term, trunc, _ = env.step(action)
        rows.append((obs, action, nxt, reward, term))
        obs = nxt if not (term or trunc) else env.reset()[0]
    return [torch.as_tensor(np.array(x), dtype=torch.float32) for x in zip(*rows)]


def available(env_id):
    try:
        make_env(env_id)
    except ConfigError as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize("env_id", sorted(KNOWN_REWARDS))
def test_known_reward_equals_the_environment_reward(env_id):
    available(env_id)
    o, a, n, r, _ = random_transitions(env_id)
    assert torch.allclose(known_reward(env_id)(o, a, n), r, atol=1e-4)


@pytest.mark.parametrize("env_id", sorted(KNOWN_TERMINATIONS))
def test_known_termination_equals_the_environment_flag(env_id):
    available(env_id)
    o, a, n, _, term = random_transitions(env_id)
    assert term.sum() >= 3  # the check covers terminal steps
    assert torch.equal(known_termination(env_id)(o, a, n), term.bool())


def test_pendulum_reward_clips_the_action_as_the_env_does():
    env, _ = make_env("Pendulum-v1")
    obs, _ = env.reset(seed=0)
    action = np.array([3.5], np.float32)  # beyond the bound: the env clips it to 2
    nxt, reward, *_ = env.step(action)
    t = lambda x: torch.as_tensor(x, dtype=torch.float32)[None]  # noqa: E731
    assert torch.allclose(known_reward("Pendulum-v1")(t(obs), t(action), t(nxt)),
                          t(np.float32(reward)), atol=1e-5)


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
    assert "Swimmer-v5" in gym.registry
    with pytest.raises(ConfigError, match="Swimmer-v5 has no known reward .*--reward "
                       "module:function or dynaplan.register_reward"):
        known_reward("Swimmer-v5")


def test_half_cheetah_observation_ends_with_the_step_x_velocity():
    available("HalfCheetah-v5")
    env, spec = make_env("HalfCheetah-v5")
    assert spec.obs_dim == 18 and env.observation_space.shape == (18,)
    obs, _ = env.reset(seed=3)
    assert obs.shape == (18,) and obs[-1] == 0.0
    x0 = env.unwrapped.data.qpos[0]
    nxt, _, _, _, info = env.step(env.action_space.sample())
    x1 = env.unwrapped.data.qpos[0]
    assert nxt[-1] == info["x_velocity"]
    assert np.isclose(nxt[-1], (x1 - x0) / env.unwrapped.dt)
    assert env.observation_space.contains(nxt)


def test_shaped_inverted_pendulum_reward_ranks_margins_and_is_zero_after_a_fall():
    from dynaplan.envs import resolve_reward

    shaped = resolve_reward("InvertedPendulum-v5", "shaped")
    obs, action, nxt, reward, term = random_transitions("InvertedPendulum-v5")
    r, dead = shaped(obs, action, nxt), term.bool()
    assert dead.any() and (~dead).any()
    assert torch.all(r <= reward + 1e-6)  # never above the environment's reward
    assert torch.all(r[dead] == 0) and torch.all(r[~dead] >= 0.05)
    zero = torch.zeros(1, 4)
    centered = shaped(zero, torch.zeros(1, 1), zero)
    tilted = shaped(zero, torch.zeros(1, 1), torch.tensor([[0.0, 0.1, 0.0, 0.0]]))
    drifted = shaped(zero, torch.zeros(1, 1), torch.tensor([[0.8, 0.0, 0.0, 0.0]]))
    assert centered.item() == 1.0 and tilted.item() < 1.0 and drifted.item() < 1.0
    # the cart term separates positions near the middle of the rail too
    nearby = shaped(zero, torch.zeros(1, 1), torch.tensor([[0.2, 0.0, 0.0, 0.0]]))
    assert 1.0 - nearby.item() == pytest.approx(1.5 * 0.2**2)
    assert resolve_reward("InvertedPendulum-v5", "known") is known_reward("InvertedPendulum-v5")
    with pytest.raises(ConfigError, match="no shaped reward for Pendulum-v1"):
        resolve_reward("Pendulum-v1", "shaped")
