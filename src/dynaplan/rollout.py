"""Acting in environments: random data, planner episodes that feed the buffer, and
evaluation episodes on fixed reset seeds (planned as one batch, never stored)."""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from dynaplan.agent import MPCAgent
from dynaplan.data import ReplayBuffer

EVAL_SEED_BASE = 10_000  # evaluation episode i resets with seed EVAL_SEED_BASE + i


@dataclass
class Episode:
    ret: float = 0.0
    length: int = 0
    predicted_return: float = float("nan")
    frames: list[np.ndarray] = field(default_factory=list)


def collect_random(
    env: gym.Env, buffer: ReplayBuffer, num_episodes: int, seed: int | None, progress: bool
) -> list[Episode]:
    """Uniform random actions from the action space; the first reset takes `seed`."""
    episodes = []
    for i in tqdm(range(num_episodes), desc="random trajectories", disable=not progress):
        obs, _ = env.reset(seed=seed if i == 0 else None)
        ep, done = Episode(), False
        while not done:
            action = env.action_space.sample()
            next_obs, reward, terminated, truncated, _ = env.step(action)
            buffer.add(obs, action, reward, next_obs, terminated, truncated)
            ep.ret += float(reward)
            ep.length += 1
            obs, done = next_obs, terminated or truncated
        episodes.append(ep)
    return episodes


def run_episodes(
    env: gym.Env,
    agent: MPCAgent,
    buffer: ReplayBuffer,
    min_steps: int,
    record: bool,
    progress: bool,
    seed: int | None = None,
) -> list[Episode]:
    """Whole episodes with the planner until at least `min_steps` transitions were added
    (the seed's inner loop). With `record`, each episode keeps its rendered frames."""
    episodes: list[Episode] = []
    steps = 0
    bar = tqdm(total=min_steps, desc="MPC steps", leave=False, disable=not progress)
    while steps < min_steps:
        obs, _ = env.reset(seed=seed if not episodes else None)
        ep, done = Episode(), False
        if record:
            ep.frames.append(env.render())
        while not done:
            action = agent.act(obs)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            buffer.add(obs, action, reward, next_obs, terminated, truncated)
            ep.ret += float(reward)
            ep.length += 1
            if record:
                ep.frames.append(env.render())
            obs, done = next_obs, terminated or truncated
            steps += 1
            bar.update(1)
        episodes.append(ep)
    bar.close()
    return episodes


def evaluate(
    envs: list[gym.Env], agent: MPCAgent, frames: list[np.ndarray] | None = None
) -> list[float]:
    """One episode per env, reset with seeds EVAL_SEED_BASE + i, all planned in one batch
    per step. Returns the episode returns (nothing is stored). With `frames`, the first
    env's rendered frames are appended to it (that env must render rgb_array)."""
    obs = np.stack([env.reset(seed=EVAL_SEED_BASE + i)[0] for i, env in enumerate(envs)])
    if frames is not None:
        frames.append(envs[0].render())
    returns = np.zeros(len(envs))
    active = np.ones(len(envs), bool)
    while active.any():
        idx = np.flatnonzero(active)
        actions = agent.act(obs[idx])
        for j, i in enumerate(idx):
            next_obs, reward, terminated, truncated, _ = envs[i].step(actions[j])
            returns[i] += float(reward)
            obs[i] = next_obs
            if frames is not None and i == 0:
                frames.append(envs[0].render())
            if terminated or truncated:
                active[i] = False
    return returns.tolist()
