"""Acting in environments: random data, planner episodes that feed the buffer, and
evaluation episodes on fixed reset seeds (planned as one batch, never stored).

An environment that fails (an exception in `reset` or `step`, or a non-finite
observation or reward) costs only the episode it happened in: that episode's
transitions are taken back out of the buffer, one warning line says why, and the next
episode starts. After MAX_DROPPED_IN_A_ROW failed episodes in a row the run stops with a
TrainingError, rather than retrying forever.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from dynaplan.agent import MPCAgent
from dynaplan.data import ReplayBuffer
from dynaplan.errors import TrainingError
from dynaplan.logs import Line

_log = logging.getLogger(__name__)

EVAL_SEED_BASE = 10_000  # evaluation episode i resets with seed EVAL_SEED_BASE + i
MAX_DROPPED_IN_A_ROW = 10

Warn = Line


def warn_log(message: str) -> None:
    """The default warning: a WARNING record of the dynaplan.episodes logger (logs.py; the
    command line shows it as one `dynaplan: warning: ...` line on stderr)."""
    _log.warning(message)


warn_stderr = warn_log  # its older name


@dataclass
class Episode:
    ret: float = 0.0
    length: int = 0
    predicted_return: float = float("nan")
    frames: list[np.ndarray] = field(default_factory=list)
    dropped: str | None = None
    """Why the environment broke the episode off (its transitions are not kept), or None."""
    planned: list[float] = field(default_factory=list)
    """Per step, the planner's predicted return of the plan it chose (planned episodes)."""


def row_ranges(episodes: list[Episode], end: int) -> list[tuple[int, int]]:
    """The buffer rows [start, stop) of each of `episodes`, in order, when they are the
    last ones added to a buffer that now holds `end` rows."""
    ranges = []
    for ep in reversed(episodes):
        ranges.append((end - ep.length, end))
        end -= ep.length
    return ranges[::-1]


class _EnvFault(Exception):
    """The environment failed; the message says how."""


def _observation(env: gym.Env, obs: object, where: str) -> np.ndarray:
    """`obs` once it is finite numbers of the observation space's shape."""
    try:
        values = np.asarray(obs, dtype=np.float64)
    except (TypeError, ValueError):
        raise _EnvFault(f"{where} returned an observation that is not numbers") from None
    shape = env.observation_space.shape
    if values.shape != shape:
        raise _EnvFault(f"{where} returned an observation of shape {values.shape}, not "
                        f"{shape}")
    if not np.isfinite(values).all():
        raise _EnvFault(f"{where} returned a non-finite observation")
    return obs  # type: ignore[return-value]


def _flag(value: object, name: str, where: str) -> bool:
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, (int, np.integer))
                                               and value in (0, 1)):
        return bool(value)
    raise _EnvFault(f"{where} returned a {name} flag that is not a bool")


def _reset(env: gym.Env, seed: int | None) -> np.ndarray:
    try:
        obs, _ = env.reset(seed=seed)
    except Exception as exc:
        raise _EnvFault(f"reset raised {_describe(exc)}") from None
    return _observation(env, obs, "reset")


def _step(env: gym.Env, action: np.ndarray, t: int) -> tuple:
    """One step, each value it returns checked: a numeric observation of the space's
    shape, a real number as reward, bools as flags, all finite."""
    where = f"step {t}"
    try:
        next_obs, reward, terminated, truncated, _ = env.step(action)
    except Exception as exc:
        raise _EnvFault(f"{where} raised {_describe(exc)}") from None
    next_obs = _observation(env, next_obs, where)
    value: Any = reward
    if (isinstance(value, (str, bytes)) or np.ndim(value) != 0
            or not np.issubdtype(np.asarray(value).dtype, np.number)):
        raise _EnvFault(f"{where} returned a reward that is not a number")
    if not np.isfinite(float(value)):
        raise _EnvFault(f"{where} returned a non-finite reward")
    return (next_obs, reward, _flag(terminated, "terminated", where),
            _flag(truncated, "truncated", where))


def _frame(env: gym.Env) -> np.ndarray:
    """The environment's rendered frame (it must render rgb_array)."""
    return np.asarray(env.render())


def _describe(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def play_episode(
    env: gym.Env,
    policy: Callable[[np.ndarray], np.ndarray],
    buffer: ReplayBuffer,
    record: bool = False,
    seed: int | None = None,
    on_step: Callable[[], object] | None = None,
    planned: Callable[[], float] | None = None,
) -> Episode:
    """One whole episode of `policy`, every transition added to `buffer`. If the
    environment fails, the episode's transitions are removed again and `dropped` says
    why. With `record`, the episode keeps its rendered frames; with `planned`, what it
    returns after each action (the planner's predicted return) goes to `Episode.planned`."""
    start = len(buffer)
    ep = Episode()
    try:
        obs = _reset(env, seed)
        if record:
            ep.frames.append(_frame(env))
        done = False
        while not done:
            action = policy(obs)
            if planned is not None:
                ep.planned.append(planned())
            next_obs, reward, terminated, truncated = _step(env, action, ep.length)
            buffer.add(obs, action, reward, next_obs, terminated, truncated)
            ep.ret += float(reward)
            ep.length += 1
            if record:
                ep.frames.append(_frame(env))
            obs, done = next_obs, terminated or truncated
            if on_step is not None:
                on_step()
    except _EnvFault as fault:
        buffer.truncate(start)
        ep.dropped, ep.frames = str(fault), []
    return ep


def _play_until(
    env: gym.Env,
    policy: Callable[[np.ndarray], np.ndarray],
    buffer: ReplayBuffer,
    done: Callable[[list[Episode]], bool],
    warn: Warn,
    bar: tqdm,
    per_step: bool,
    record: bool = False,
    seed: int | None = None,
    before_episode: Callable[[], object] | None = None,
    planned: Callable[[], float] | None = None,
) -> list[Episode]:
    """Episodes until `done(kept episodes)`; returns every episode, dropped ones too.
    `seed` goes to the first reset only; `bar` counts kept steps (`per_step`) or kept
    episodes."""
    episodes: list[Episode] = []
    kept: list[Episode] = []
    in_a_row = 0
    on_step = (lambda: bar.update(1)) if per_step else None
    while not done(kept):
        if before_episode is not None:
            before_episode()
        ep = play_episode(env, policy, buffer, record, seed if not episodes else None, on_step,
                          planned)
        episodes.append(ep)
        if ep.dropped is None:
            kept.append(ep)
            in_a_row = 0
            if not per_step:
                bar.update(1)
            continue
        if per_step:
            bar.update(-ep.length)
        warn(f"dropped an episode of {_env_id(env)}: {ep.dropped} "
             f"({ep.length} transitions not kept)")
        in_a_row += 1
        if in_a_row >= MAX_DROPPED_IN_A_ROW:
            raise TrainingError(f"environment {_env_id(env)} failed in {in_a_row} episodes "
                                f"in a row (last: {ep.dropped}); stopping")
    bar.close()
    return episodes


def _env_id(env: gym.Env) -> str:
    return env.spec.id if env.spec is not None else type(env.unwrapped).__name__


def collect_random(
    env: gym.Env,
    buffer: ReplayBuffer,
    num_episodes: int,
    seed: int | None,
    progress: bool,
    warn: Warn = warn_log,
) -> list[Episode]:
    """`num_episodes` whole episodes of uniform random actions from the action space
    (dropped ones are retried); the first reset takes `seed`. Returns the kept ones."""
    bar = tqdm(total=num_episodes, desc="random trajectories", disable=not progress)
    episodes = _play_until(
        env, lambda obs: env.action_space.sample(), buffer,
        lambda kept: len(kept) >= num_episodes, warn, bar, per_step=False, seed=seed,
    )
    return [ep for ep in episodes if ep.dropped is None]


def run_episodes(
    env: gym.Env,
    agent: MPCAgent,
    buffer: ReplayBuffer,
    min_steps: int,
    record: bool,
    progress: bool,
    seed: int | None = None,
    warn: Warn = warn_log,
) -> list[Episode]:
    """Whole episodes with the planner until at least `min_steps` transitions were kept
    (the seed's inner loop). The agent's warm start is reset at every episode start.
    Returns every episode in order, dropped ones included (`Episode.dropped`)."""
    bar = tqdm(total=min_steps, desc="MPC steps", leave=False, disable=not progress)
    return _play_until(
        env, agent.act, buffer, lambda kept: sum(e.length for e in kept) >= min_steps,
        warn, bar, per_step=True, record=record, seed=seed, before_episode=agent.reset,
        planned=lambda: float(agent.last_predicted_return[0]),  # type: ignore[index]
    )


def evaluate(
    envs: list[gym.Env],
    agent: MPCAgent,
    frames: list[np.ndarray] | None = None,
    warn: Warn = warn_log,
    lengths: list[int] | None = None,
    on_step: Callable[[int], object] | None = None,
) -> list[float]:
    """One episode per env, reset with seeds EVAL_SEED_BASE + i, all planned in one batch
    per step. Returns the episode returns (nothing is stored); an episode whose env
    fails returns NaN, with a warning. With `frames`, the first env's rendered frames
    are appended to it (that env must render rgb_array); with `lengths`, each episode's
    length in steps; `on_step(running)` is called after each batched step with the number
    of episodes still running (a progress bar)."""
    agent.reset()
    shape = envs[0].observation_space.shape
    assert shape is not None, "a Box observation space has a shape"
    obs_dim = shape[0]
    obs = np.zeros((len(envs), obs_dim), np.float32)
    returns = np.zeros(len(envs))
    steps = np.zeros(len(envs), int)
    active = np.ones(len(envs), bool)

    def fail(i: int, fault: _EnvFault) -> None:
        warn(f"evaluation episode {i} of {_env_id(envs[i])} failed: {fault}")
        returns[i], active[i] = float("nan"), False

    for i, env in enumerate(envs):
        try:
            obs[i] = _reset(env, EVAL_SEED_BASE + i)
        except _EnvFault as fault:
            fail(i, fault)
    if frames is not None and active[0]:
        frames.append(_frame(envs[0]))
    t = 0
    while active.any():
        idx = np.flatnonzero(active)
        actions = agent.act(obs[idx], ids=idx)
        for j, k in enumerate(idx.tolist()):
            try:
                next_obs, reward, terminated, truncated = _step(envs[k], actions[j], t)
            except _EnvFault as fault:
                fail(k, fault)
                continue
            returns[k] += float(reward)
            steps[k] += 1
            obs[k] = next_obs
            if frames is not None and k == 0:
                frames.append(_frame(envs[0]))
            if terminated or truncated:
                active[k] = False
        t += 1
        if on_step is not None:
            on_step(int(active.sum()))
    if lengths is not None:
        lengths.extend(int(n) for n in steps)
    return returns.tolist()
