"""The one place where models meet planners: predicted returns of action sequences."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch

from dynaplan.models.fused import FusedMLPs
from dynaplan.models.propagation import EnsembleDynamics
from dynaplan.models.world import DynamicsModel, RewardModel

RewardFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
TerminationFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class Objective(Protocol):
    def __call__(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """obs: [B, O]; actions: [B, N, H, A] -> predicted returns [B, N]."""
        ...


class ModelObjective:
    """Sum of rewards along the trajectories the dynamics model predicts.

    s_0 = obs; s_{t+1} = dynamics(s_t, a_t); r_t = reward(s_t, a_t, s_{t+1}), zero after a
    predicted termination; return = sum_t r_t (undiscounted, as in the seed), averaged
    over `particles` rollouts per sequence (PETS). All B x N x P rollouts run as one batch
    of rows (particle index fastest); the only Python loop is over the horizon.

    `dynamics` is a DynamicsModel (deterministic; P = 1) or an EnsembleDynamics (its own
    propagation and particle count). `reward` is the learned RewardModel or a known reward
    function; `termination` a known termination function or None. With `fused` (default)
    MLP models run in their folded planning form (models/fused.py), which `refresh()`
    rebuilds: call it after every fit. `fused=False` runs the modules as they are, the
    reference the fused path is tested against. `compile` puts the fused networks (and,
    unless dynamics and reward are one network pair, the whole horizon step with a known
    reward) through `torch.compile`, which fuses the small elementwise kernels; first
    calls are slow while it compiles.
    """

    def __init__(
        self,
        dynamics: DynamicsModel | EnsembleDynamics,
        reward: RewardModel | RewardFn,
        termination: TerminationFn | None = None,
        fused: bool = True,
        compile: bool = False,
    ) -> None:
        self.dynamics, self.reward, self.termination = dynamics, reward, termination
        self.fused, self.compile = fused, compile
        self.particles = dynamics.particles if isinstance(dynamics, EnsembleDynamics) else 1
        self._dyn_net: FusedMLPs | None = None
        self._rew_net: FusedMLPs | None = None
        self._joint = isinstance(dynamics, DynamicsModel) and isinstance(reward, RewardModel)
        self.version = 0
        """Counts `refresh()` calls: a captured CUDA graph of an older version is stale."""
        self._built = False
        self._step = self._fused_step

    @property
    def generators(self) -> tuple[torch.Generator, ...]:
        """The generators a call draws from (the ensemble's particle draws), if any."""
        gen = getattr(self.dynamics, "generator", None)
        return () if gen is None else (gen,)

    def refresh(self) -> None:
        """Snapshot the models' current weights into the fused planning networks."""
        self.version += 1
        self._built = True
        if not self.fused:
            return
        if self._joint:  # dynamics and reward share their input: one network pair
            net = FusedMLPs([self.dynamics, self.reward])  # type: ignore[list-item]
            self._dyn_net = torch.compile(net) if self.compile else net
            return
        if isinstance(self.dynamics, DynamicsModel):
            self._dyn_net = FusedMLPs([self.dynamics])
        if isinstance(self.reward, RewardModel):
            self._rew_net = FusedMLPs([self.reward])
        self._step = torch.compile(self._fused_step) if self.compile else self._fused_step

    def step(self, state: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(s [R, O], a [R, A]) -> (s' [R, O], r [R])."""
        if not self.fused:
            next_state = self.dynamics(state, action)
            return next_state, self.reward(state, action, next_state)
        if not self._built:
            self.refresh()
        return self._step(state, action)

    def _fused_step(
        self, state: torch.Tensor, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([state, action], dim=-1)
        if self._joint:
            out = self._dyn_net(x)  # type: ignore[misc]
            return state + out[0], out[1, :, 0]
        if self._dyn_net is not None:
            next_state = state + self._dyn_net(x)[0]
        else:
            next_state = self.dynamics(state, action)
        if self._rew_net is not None:
            return next_state, self._rew_net(x)[0, :, 0]
        return next_state, self.reward(state, action, next_state)

    @torch.inference_mode()
    def __call__(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        B, N, H, A = actions.shape
        P = self.particles
        rows = B * N * P
        state = obs[:, None, :].expand(B, N * P, obs.shape[-1]).reshape(rows, -1)
        if P > 1:
            actions = actions[:, :, None].expand(B, N, P, H, A)
        flat = actions.reshape(rows, H, A)
        if self.fused and self._joint and self.termination is None:
            return self._rollout_joint(state, flat).view(B, N)
        total = torch.zeros(rows, device=actions.device, dtype=actions.dtype)
        alive = torch.ones(rows, device=actions.device, dtype=torch.bool)
        for t in range(H):
            next_state, reward = self.step(state, flat[:, t])
            if self.termination is None:
                total += reward
            else:
                total += torch.where(alive, reward, torch.zeros_like(reward))
                alive &= ~self.termination(state, flat[:, t], next_state)
            state = next_state
        return total.view(B, N, P).mean(dim=-1)

    def _rollout_joint(self, state: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The seed's case (learned dynamics + learned reward, fused): buffers are
        allocated once per call and reused at every horizon step. state [R, O],
        actions [R, H, A] -> returns [R]."""
        if not self._built:
            self.refresh()
        net = self._dyn_net
        rows, obs_dim = state.shape
        x = state.new_empty(rows, obs_dim + actions.shape[-1])  # [s, a] model input
        x[:, :obs_dim] = state
        total = state.new_zeros(rows)
        for t in range(actions.shape[1]):
            x[:, obs_dim:] = actions[:, t]
            out = net(x, reuse=not self.compile)  # type: ignore[misc]  # [2, R, O]
            total += out[1, :, 0]
            x[:, :obs_dim] += out[0]  # s_{t+1} = s_t + delta, in place
        return total
