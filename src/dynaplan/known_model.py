"""MPC on a model you know: plain torch functions as the dynamics, reward and termination
that a planner optimizes through, and an MPC controller over them in one call.

    def dynamics(state, action):          # state [R, O], action [R, A] -> next state [R, O]
        return state + 0.1 * action
    def reward(obs, action, next_obs):    # [R, O], [R, A], [R, O] -> reward [R]
        return -(next_obs - goal).square().sum(dim=-1)

    controller = dynaplan.mpc(dynamics, reward, action_low=-1.0, action_high=1.0,
                              planner="cem", horizon=20, num_sequences=200)
    action = controller.act(obs)          # [O] -> [A];  [B, O] -> [B, A]

Nothing is learned and no accelerator is chosen: the objective steps the functions
through the reference horizon loop (objective.StepRollout), so any torch function works
(no `.parameters()`, no module). Shape letters as in types.py (R = B * N * P rows).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor

from dynaplan.agent import MPCAgent
from dynaplan.errors import ConfigError, quoted
from dynaplan.objective import ModelObjective, StepRollout
from dynaplan.planners.registry import make_planner
from dynaplan.types import Dynamics, RewardFn, TerminationFn

__all__ = ["DynamicsFn", "mpc", "objective_from_functions"]

DynamicsFn = Callable[[Tensor, Tensor], Tensor]
"""(state [R, O], action [R, A]) -> next state [R, O], batched torch; a `particles`
attribute, if it has one, asks for that many rollouts per sequence."""


def objective_from_functions(dynamics: DynamicsFn, reward: RewardFn,
                             termination: TerminationFn | None = None,
                             particles: int = 1) -> ModelObjective:
    """The objective `(obs [B, O], actions [B, N, H, A]) -> returns [B, N]` of a known
    model: rewards summed along the states `dynamics` predicts, none after a step where
    `termination` (bool [R]) says the episode ends. particles: rollouts averaged per
    sequence (P > 1 for a stochastic `dynamics`, which then draws its own noise)."""
    for name, fn in (("dynamics", dynamics), ("reward", reward), ("termination", termination)):
        if fn is not None and not callable(fn):
            raise ConfigError(f"{name} must be a function, got a {type(fn).__name__}")
    if isinstance(particles, bool) or not isinstance(particles, int) or particles < 1:
        raise ConfigError(f"particles must be a positive integer, got {quoted(particles)}")
    model = cast(Dynamics, dynamics)  # a plain function counts as one particle
    return ModelObjective(model, reward, termination, rollout=StepRollout(model),
                          particles=particles)


def _device(device: str | torch.device) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda requested but CUDA is not available (use cpu or auto)")
    return dev


def _bounds(low: ArrayLike, high: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Action bounds as float32 [A] each (a number is one action), low < high."""
    lo = np.atleast_1d(np.asarray(low, dtype=np.float32))
    hi = np.atleast_1d(np.asarray(high, dtype=np.float32))
    try:
        lo, hi = np.broadcast_arrays(lo, hi)
    except ValueError:
        raise ConfigError(f"action_low {list(lo.shape)} and action_high {list(hi.shape)} "
                          "must have the same shape [A]") from None
    if lo.ndim != 1 or not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        raise ConfigError("action_low and action_high must be finite numbers, one per action "
                          "dimension")
    if not (lo < hi).all():
        raise ConfigError(f"action_low must be below action_high in every dimension, got "
                          f"{lo.tolist()} and {hi.tolist()}")
    return lo.copy(), hi.copy()


def mpc(dynamics: DynamicsFn, reward: RewardFn, action_low: ArrayLike,
        action_high: ArrayLike, *, termination: TerminationFn | None = None,
        planner: str = "cem", horizon: int = 20, particles: int = 1, seed: int = 0,
        device: str | torch.device = "cpu", warm_start: bool | None = None,
        **planner_options: Any) -> MPCAgent:
    """A model-predictive controller on a known model: each `act(obs [O] or [B, O])`
    plans `horizon` steps with `planner` ("cem", "random", "icem", "mppi": PLANNERS)
    through `dynamics` and `reward` and returns the first action [A] or [B, A], inside
    [action_low, action_high] (numbers or [A] each). Call `reset()` at episode start.

    planner_options: the planner's own (`num_sequences=200`, `num_iterations=5`,
    `num_elites=20`, `temperature=0.5`; `dynaplan train --help` lists them); an unknown
    one is a ConfigError. warm_start: start from the previous plan shifted by one step
    (None: the planner's default, on for iCEM and MPPI). seed: the planner's sampling;
    the same seed gives the same actions. The functions run on `device`'s tensors."""
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ConfigError(f"horizon must be a positive integer, got {quoted(horizon)}")
    low, high = _bounds(action_low, action_high)
    dev = _device(device)
    objective = objective_from_functions(dynamics, reward, termination, particles)
    generator = torch.Generator(device=dev).manual_seed(seed)
    chosen = make_planner(planner, objective, low, high, horizon, generator, **planner_options)
    return MPCAgent(chosen, dev, warm_start)
