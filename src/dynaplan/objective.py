"""The one place where models meet planners: predicted returns of action sequences.

    s_0 = obs,  s_{t+1} = f(s_t, a_t),  r_t = r(s_t, a_t, s_{t+1}),
    return = sum_t (r_t if no predicted termination before step t, else v),

undiscounted, as in the seed, and averaged over `particles` rollouts per sequence (PETS,
Chua et al. 2018). `v`, the value of each step a predicted termination cuts off, is 0 by
default (the hard cut of PETS); with `--termination-value floor` a run sets it to the
lowest of 0 and the lowest per-step reward in its data (`termination_floor`): where
staying alive can earn less than nothing (an env's control cost above its healthy
reward), a cut at 0 makes ending the episode the best plan.

All B x N x P rollouts run as one batch of rows, particle index fastest; the only Python
loop is over the horizon, in the `Rollout`.

This module is the definition: `StepRollout` steps the dynamics model in plain torch, and
the reward and the termination are then evaluated once over all R x H transitions (they
are rowwise). An accelerator (accel/) replaces the rollout with one that computes the
same faster, chosen once in build.py; the formula stays here.
"""

from __future__ import annotations

import torch

from dynaplan.types import Dynamics, RewardFn, Rollout, TerminationFn, Trajectory


class StepRollout:
    """The reference horizon loop: s_{t+1} = dynamics(s_t, a_t), step by step."""

    name = "reference"

    def __init__(self, dynamics: Dynamics) -> None:
        self.dynamics = dynamics

    def __call__(self, state: torch.Tensor, actions: torch.Tensor) -> Trajectory:
        """state [R, O], actions [R, H, A] -> Trajectory(states [R, H + 1, O])."""
        states = [state]
        for a_t in actions.unbind(1):
            states.append(self.dynamics(states[-1], a_t))
        return Trajectory(states=torch.stack(states, dim=1))

    def refresh(self) -> None:
        """Nothing to snapshot: every call reads the model as it is."""


class ModelObjective:
    """Sum of rewards along the trajectories the dynamics model predicts (the formula in
    the module docstring).

    `dynamics` maps (state [R, O], action [R, A]) to the next state and says how many
    `particles` it wants per sequence (1 when it does not say: a deterministic model or a
    plain function). `reward` is a RewardFn (a known function, or a learned model called
    the same way); `termination` a TerminationFn or None; `termination_value` the value
    of each step a predicted termination cuts off (0: the hard cut). `rollout` runs the horizon
    loop (default: `StepRollout`, the reference); after every fit call `refresh()`, which
    lets an accelerated rollout snapshot the new weights.
    """

    def __init__(
        self,
        dynamics: Dynamics,
        reward: RewardFn,
        termination: TerminationFn | None = None,
        rollout: Rollout | None = None,
        particles: int | None = None,
        termination_value: float = 0.0,
    ) -> None:
        self.dynamics, self.reward, self.termination = dynamics, reward, termination
        self.termination_value = float(termination_value)
        """The value of each step after a predicted termination (module docstring)."""
        self.rollout = StepRollout(dynamics) if rollout is None else rollout
        self.particles = int(getattr(dynamics, "particles", 1) if particles is None
                             else particles)
        if self.particles < 1:
            raise ValueError(f"particles must be positive, got {self.particles}")
        self.version = 0
        """Counts `refresh()` calls: a captured CUDA graph of an older version is stale."""

    @property
    def kernel(self) -> str:
        """The rollout's name: what a run reports as its rollout kernel."""
        return self.rollout.name

    @property
    def generators(self) -> tuple[torch.Generator, ...]:
        """The generators a call draws from (an ensemble's particle draws), if any."""
        gen = getattr(self.dynamics, "generator", None)
        return () if gen is None else (gen,)

    def refresh(self) -> None:
        """Snapshot the models' current weights into the rollout (after every fit)."""
        self.version += 1
        self.rollout.refresh()

    @torch.inference_mode()
    def __call__(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """obs [B, O], actions [B, N, H, A] -> predicted returns [B, N]."""
        B, N, H, A = actions.shape
        P = self.particles
        rows = B * N * P
        state = obs[:, None, :].expand(B, N * P, obs.shape[-1]).reshape(rows, -1)
        if P > 1:
            actions = actions[:, :, None].expand(B, N, P, H, A)
        flat = actions.reshape(rows, H, A)
        returns = self.returns(self.rollout(state, flat), flat)
        return returns.view(B, N, P).mean(dim=-1)

    def returns(self, trajectory: Trajectory, actions: torch.Tensor) -> torch.Tensor:
        """The return [R] of each row from its predicted trajectory and its actions
        [R, H, A]: what the rollout did not compute (the rewards, the termination mask)
        is computed here, once over all R x H transitions."""
        if trajectory.returns is not None:
            return trajectory.returns
        rows, horizon, _ = actions.shape
        r = trajectory.rewards
        if r is None or self.termination is not None:
            assert trajectory.states is not None, "a rollout must predict the states"
            before = trajectory.states[:, :-1].reshape(rows * horizon, -1)
            after = trajectory.states[:, 1:].reshape(rows * horizon, -1)
            acts = actions.reshape(rows * horizon, -1)
            if r is None:
                r = self.reward(before, acts, after).view(rows, horizon)
            if self.termination is not None:  # v, not r, after a predicted termination
                done = self.termination(before, acts, after).view(rows, horizon)
                alive = done.cumsum(dim=1) == done.long()  # none before step t
                r = torch.where(alive, r, torch.full_like(r, self.termination_value))
        return r.sum(dim=1)


def termination_floor(rewards: torch.Tensor) -> float:
    """The value of a step after a predicted termination, from the per-step rewards seen:
    the lowest of 0 and the lowest reward, so that ending an episode is never worth more
    than the worst step of staying in it, nor more than nothing (module docstring)."""
    if rewards.numel() == 0:
        return 0.0
    return min(0.0, float(rewards.min()))
