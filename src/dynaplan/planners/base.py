"""What every planner shares: its options, bounds, sampling inside them, ranking that puts
NaN last, elite selection, and the warm-start contract of `plan`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch

from dynaplan.planners.noise import truncated_normal
from dynaplan.types import SAMPLINGS, Objective, Plan

__all__ = ["SAMPLINGS", "Plan", "Planner"]


class Planner(ABC):
    """Black-box optimizer over action sequences of length `horizon` inside the bounds.

    `options` are keyword values of the planner's `Options` dataclass (declared beside it,
    each field with its help text), which checks them: a bad value is a ValueError."""

    Options: ClassVar[type]
    """The dataclass of this planner's options."""
    warm_start: ClassVar[bool] = False
    """Whether an MPCAgent warm-starts this planner unless told otherwise."""

    def __init__(
        self,
        objective: Objective,
        action_low: np.ndarray | torch.Tensor,
        action_high: np.ndarray | torch.Tensor,
        horizon: int,
        generator: torch.Generator,
        **options: Any,
    ) -> None:
        self.options = self.Options(**options)
        self.objective = objective
        self.horizon = horizon
        self.generator = generator
        device = generator.device
        self.low = torch.as_tensor(action_low, dtype=torch.float32, device=device)
        self.high = torch.as_tensor(action_high, dtype=torch.float32, device=device)

    @property
    def action_dim(self) -> int:
        return int(self.low.shape[0])

    @property
    def center(self) -> torch.Tensor:
        """[A] the middle of the bounds."""
        return (self.low + self.high) / 2

    @property
    def half_range(self) -> torch.Tensor:
        """[A] half the width of the bounds: the unit of `init_std` and `noise_std`."""
        return (self.high - self.low) / 2

    def uniform(self, batch: int, num: int) -> torch.Tensor:
        """[batch, num, H, A] uniform inside the bounds."""
        shape = (batch, num, self.horizon, self.action_dim)
        u = torch.rand(shape, generator=self.generator, device=self.low.device)
        return self.low + u * (self.high - self.low)

    def gaussian(
        self, mean: torch.Tensor, std: torch.Tensor, noise: torch.Tensor, sampling: str
    ) -> torch.Tensor:
        """Candidates [B, N, H, A] inside the bounds from mean, std [B, H, A] and standard
        normal noise [B, N, H, A]: "clip" clamps mean + std * noise to the bounds (the
        seed's CEM; mass piles up on the bounds), "truncnorm" samples the Gaussian
        truncated to the bounds (noise.truncated_normal)."""
        if sampling == "clip":  # two kernels: mean + std * noise, clamped in place
            return torch.addcmul(mean[:, None], std[:, None], noise).clamp_(self.low, self.high)
        return truncated_normal(mean[:, None], std[:, None], noise, self.low, self.high)

    def evaluate(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Objective values [B, N] with NaN mapped to -inf, so it ranks last, never first."""
        returns = self.objective(obs, actions)
        return torch.nan_to_num(returns, nan=-torch.inf)

    @staticmethod
    def top_k(actions: torch.Tensor, returns: torch.Tensor, k: int) -> torch.Tensor:
        """The k highest-return sequences [B, k, H, A] of actions [B, N, H, A], best first."""
        idx = returns.topk(k, dim=1).indices  # [B, k]
        return torch.gather(actions, 1, idx[:, :, None, None].expand(-1, -1, *actions.shape[2:]))

    @staticmethod
    def best(actions: torch.Tensor, returns: torch.Tensor) -> Plan:
        """The highest-return sequence per start state."""
        idx = returns.argmax(dim=1)  # [B]
        rows = torch.arange(actions.shape[0], device=actions.device)
        chosen = actions[rows, idx]  # [B, H, A]
        return Plan(action=chosen[:, 0], actions=chosen, predicted_return=returns[rows, idx])

    def scored(self, obs: torch.Tensor, actions: torch.Tensor) -> Plan:
        """The plan of one sequence [B, H, A] per start state, scored by one more
        objective call (for planners that return a mean rather than a sample)."""
        returns = self.evaluate(obs, actions[:, None])[:, 0]
        return Plan(action=actions[:, 0], actions=actions, predicted_return=returns)

    @abstractmethod
    def plan(
        self,
        obs: torch.Tensor,
        init_mean: torch.Tensor | None = None,
        init_elites: torch.Tensor | None = None,
    ) -> Plan:
        """obs: [B, O] on the planner's device -> the plan for each start state.

        init_mean: [B, H, A] inside the bounds, a warm start (the previous step's plan
        shifted by one step, see agent.shift); None starts cold, as the seed does.
        init_elites: [B, K, H, A] sequences to put among the first candidates; used by
        planners that return `Plan.elites` (iCEM), ignored by the others."""
