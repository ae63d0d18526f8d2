"""What a run measures of its own models every iteration, to say why planning fails.

Measured on the episodes the iteration has just played: the models were fit before those
episodes existed, so they are held-out real data, and they are the states the planner
actually visits. Columns of metrics.csv (NaN where a value does not exist):

    model/open_loop_error_1    the dynamics model's k-step open-loop prediction error, for
    model/open_loop_error_5    k = 1, 5 and the planning horizon H: from every real state
    model/open_loop_error_h    s_t, the model is stepped k times with the real actions and
                               compared with s_{t+k}; the root mean square over the state's
                               entries, each divided by its standard deviation over all the
                               data so far (1.0: as far off as the data's own spread); the
                               mean over starts with k steps left in their episode, and over
                               particles for an ensemble, sampled as when planning
    model/reward_rmse          the planning reward's root mean square error against the
                               environment's rewards, per step: the learned reward model's,
                               or (about 0) the env's known one, or a shaped or user's one
    planner/predicted_return   the planner's predicted return (its objective, over H steps)
                               of the plan it chose, mean over steps
    planner/real_return        the environment's return over the H steps that followed,
                               mean over the same steps (those with H steps left, or
                               ending in a termination: nothing follows a termination)
    planner/return_gap         predicted - real: > 0 the planner is optimistic (it plans
                               through something the real system does not allow)
    model/termination_precision  the learned termination's precision and recall on the
    model/termination_recall     fit's validation rows (its `terminated` flags)

The real return is the environment's reward even where the planner plans with a shaped
reward (`--reward shaped`): then the gap holds the shaping too.

Nothing here draws from a run's generators: an ensemble's particles draw from a generator
of their own, seeded per iteration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dynaplan.data import ReplayBuffer
from dynaplan.models.termination import TerminationModel, precision_recall
from dynaplan.types import Dynamics, RewardFn, Transitions

OPEN_LOOP_STEPS = (1, 5)
"""The fixed open-loop steps; the planning horizon is the third (`open_loop_error_h`)."""
COLUMNS = ("model/open_loop_error_1", "model/open_loop_error_5", "model/open_loop_error_h",
           "model/reward_rmse", "model/termination_precision", "model/termination_recall",
           "planner/predicted_return", "planner/real_return", "planner/return_gap")


@dataclass(frozen=True)
class Segment:
    """The rows [start, stop) of the buffer that hold one episode, in order;
    `planned[t]`: the planner's predicted return of the plan it chose at step t (NaN
    where there was none)."""

    start: int
    stop: int
    planned: np.ndarray


def state_scale(buffer: ReplayBuffer, rows: int) -> np.ndarray:
    """[O] the standard deviation of each observation entry over the first `rows` rows
    of the buffer (1 where an entry does not vary)."""
    std = buffer.obs[:rows].astype(np.float64).std(axis=0)
    return np.where(std < 1e-8, 1.0, std)


@torch.no_grad()
def open_loop_errors(dynamics: Dynamics, buffer: ReplayBuffer, segments: Sequence[Segment],
                     steps: Sequence[int], scale: np.ndarray,
                     device: torch.device) -> dict[int, float]:
    """k -> the mean normalized k-step open-loop error (module docstring) over every start
    of every segment with k steps left in it; NaN where no start has."""
    horizon = max(steps)
    starts, actions, targets, valid = [], [], [], []
    for seg in segments:
        obs, act = buffer.obs[seg.start:seg.stop], buffer.action[seg.start:seg.stop]
        nxt = buffer.next_obs[seg.start:seg.stop]
        n = seg.stop - seg.start
        # row t, step j: action a_{t+j}, target s_{t+j+1}, valid while t + j < n
        index = np.arange(n)[:, None] + np.arange(horizon)[None, :]  # [n, H]
        index_ok = index < n
        index = np.minimum(index, n - 1)
        starts.append(obs)
        actions.append(act[index])
        targets.append(nxt[index])
        valid.append(index_ok)
    if not starts:
        return {k: float("nan") for k in steps}
    particles = int(getattr(dynamics, "particles", 1))
    to = lambda a: torch.as_tensor(np.concatenate(a), device=device)  # noqa: E731
    acts, target, ok = to(actions), to(targets), to(valid)  # [n, H, A], [n, H, O], [n, H]
    n = acts.shape[0]
    state = to(starts).repeat_interleave(particles, dim=0)  # [n * P, O], particles fastest
    inv_scale = torch.as_tensor(1.0 / scale, dtype=state.dtype, device=device)
    out: dict[int, float] = {}
    for j in range(horizon):
        state = dynamics(state, acts[:, j].repeat_interleave(particles, dim=0))
        if j + 1 in steps:
            off = (state.view(n, particles, -1) - target[:, j, None, :]) * inv_scale
            err = (off**2).mean(dim=-1).sqrt().mean(dim=-1)  # [n]: mean over particles
            mask = ok[:, j] & torch.isfinite(err)
            out[j + 1] = float(err[mask].mean()) if bool(mask.any()) else float("nan")
    return out


@torch.no_grad()
def reward_rmse(reward: RewardFn, buffer: ReplayBuffer, segments: Sequence[Segment],
                device: torch.device) -> float:
    """Root mean square of (predicted - real) reward over the segments' transitions."""
    if not segments:
        return float("nan")
    rows = np.concatenate([np.arange(s.start, s.stop) for s in segments])
    if not len(rows):
        return float("nan")
    as_t = lambda a: torch.as_tensor(a[rows], device=device)  # noqa: E731
    predicted = reward(as_t(buffer.obs), as_t(buffer.action), as_t(buffer.next_obs))
    real = as_t(buffer.reward)
    return float(((predicted.reshape(-1) - real) ** 2).mean().sqrt())


def planner_returns(buffer: ReplayBuffer, segments: Sequence[Segment],
                    horizon: int) -> tuple[float, float]:
    """(mean predicted, mean real) H-step return over the steps of the segments that have
    H steps left or end in a termination within them (module docstring)."""
    predicted, real = [], []
    for seg in segments:
        rewards = buffer.reward[seg.start:seg.stop].astype(np.float64)
        n = len(rewards)
        terminated = bool(buffer.terminated[seg.stop - 1]) if n else False
        window = np.concatenate([[0.0], np.cumsum(rewards)])
        for t in range(n):
            if t + horizon > n and not terminated:
                continue  # the episode was cut short: the H steps did not happen
            if not np.isfinite(seg.planned[t]):
                continue
            predicted.append(seg.planned[t])
            real.append(window[min(t + horizon, n)] - window[t])
    if not predicted:
        return float("nan"), float("nan")
    return float(np.mean(predicted)), float(np.mean(real))


@torch.no_grad()
def termination_scores(model: TerminationModel | None, data: Transitions,
                       valid: np.ndarray) -> tuple[float, float]:
    """(precision, recall) of a fitted termination model on the rows `valid` of `data`
    (the fit's validation split); NaN for none, or one not fitted yet."""
    if model is None or not bool(model.fitted) or not len(valid):
        return float("nan"), float("nan")
    rows = torch.as_tensor(valid, device=data.obs.device)
    model.eval()
    predicted = model(data.obs[rows], data.action[rows], data.next_obs[rows])
    return precision_recall(predicted, data.terminated[rows])


def diagnose(dynamics: Dynamics, reward: RewardFn, buffer: ReplayBuffer,
             segments: Sequence[Segment], horizon: int, device: torch.device,
             termination: tuple[float, float] = (float("nan"), float("nan"))
             ) -> dict[str, float]:
    """The columns of the module docstring for the episodes in `segments` (the last ones
    in `buffer`); `termination`: the precision and recall measured after the fit."""
    first = min((s.start for s in segments), default=len(buffer))
    scale = state_scale(buffer, first or len(buffer))  # the data before them, if any
    errors = open_loop_errors(dynamics, buffer, segments, (*OPEN_LOOP_STEPS, horizon),
                              scale, device)
    predicted, real = planner_returns(buffer, segments, horizon)
    return {
        "model/open_loop_error_1": errors[1],
        "model/open_loop_error_5": errors.get(5, float("nan")),
        "model/open_loop_error_h": errors[horizon],
        "model/reward_rmse": reward_rmse(reward, buffer, segments, device),
        "model/termination_precision": termination[0],
        "model/termination_recall": termination[1],
        "planner/predicted_return": predicted,
        "planner/real_return": real,
        "planner/return_gap": predicted - real,
    }
