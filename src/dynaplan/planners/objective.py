"""The one place where models meet planners: predicted returns of action sequences."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch

from dynaplan.models.fused import FusedMLPs
from dynaplan.models.world import DynamicsModel, RewardModel

RewardFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class Objective(Protocol):
    def __call__(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """obs: [B, O]; actions: [B, N, H, A] -> predicted returns [B, N]."""
        ...


class ModelObjective:
    """Sum of rewards along the trajectory the dynamics model predicts.

    s_0 = obs; r_t = reward(s_t, a_t, s_{t+1}); s_{t+1} = dynamics(s_t, a_t); return sum_t r_t
    (undiscounted, as in the seed). All N sequences of all B start states are rolled out
    as one batch of B*N rows; the only Python loop is over the horizon.

    `reward` is the learned RewardModel or a known reward function. With `fused` (the
    default) the models run in their folded planning form (models/fused.py), which
    `refresh()` rebuilds; call it after every fit. `fused=False` runs the modules as they
    are, the reference the fused path is tested against.
    """

    def __init__(
        self, dynamics: DynamicsModel, reward: RewardModel | RewardFn, fused: bool = True
    ) -> None:
        self.dynamics, self.reward, self.fused = dynamics, reward, fused
        self._net: FusedMLPs | None = None

    @property
    def learned_reward(self) -> bool:
        return isinstance(self.reward, RewardModel)

    def refresh(self) -> None:
        """Snapshot the models' current weights into the fused planning network."""
        if self.fused:
            models = [self.dynamics] + ([self.reward] if self.learned_reward else [])
            self._net = FusedMLPs(models)  # type: ignore[arg-type]

    def step(self, state: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(s [M, O], a [M, A]) -> (s' [M, O], r [M])."""
        if not self.fused:
            next_state = self.dynamics(state, action)
            return next_state, self.reward(state, action, next_state)
        if self._net is None:
            self.refresh()
        out = self._net(torch.cat([state, action], dim=-1))  # type: ignore[misc]
        next_state = state + out[0]
        if self.learned_reward:
            return next_state, out[1, :, 0]
        return next_state, self.reward(state, action, next_state)

    @torch.inference_mode()
    def __call__(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        B, N, H, A = actions.shape
        state = obs[:, None, :].expand(B, N, obs.shape[-1]).reshape(B * N, -1)
        flat = actions.reshape(B * N, H, A)
        total = torch.zeros(B * N, device=actions.device, dtype=actions.dtype)
        for t in range(H):
            state, reward = self.step(state, flat[:, t])
            total += reward
        return total.view(B, N)
