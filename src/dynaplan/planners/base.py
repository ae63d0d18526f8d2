"""What every planner shares: bounds, sampling helpers, ranking that puts NaN last."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch

from dynaplan.planners.objective import Objective


@dataclass(frozen=True)
class Plan:
    """action: [B, A] to execute now; actions: [B, H, A] the whole chosen sequence;
    predicted_return: [B] the objective's value of that sequence."""

    action: torch.Tensor
    actions: torch.Tensor
    predicted_return: torch.Tensor


class Planner(ABC):
    """Black-box optimizer over action sequences of length `horizon` inside the bounds."""

    def __init__(
        self,
        objective: Objective,
        action_low: np.ndarray | torch.Tensor,
        action_high: np.ndarray | torch.Tensor,
        horizon: int,
        generator: torch.Generator,
    ) -> None:
        self.objective = objective
        self.horizon = horizon
        self.generator = generator
        device = generator.device
        self.low = torch.as_tensor(action_low, dtype=torch.float32, device=device)
        self.high = torch.as_tensor(action_high, dtype=torch.float32, device=device)

    @property
    def action_dim(self) -> int:
        return int(self.low.shape[0])

    def uniform(self, batch: int, num: int) -> torch.Tensor:
        """[batch, num, H, A] uniform inside the bounds."""
        shape = (batch, num, self.horizon, self.action_dim)
        u = torch.rand(shape, generator=self.generator, device=self.low.device)
        return self.low + u * (self.high - self.low)

    def evaluate(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Objective values [B, N] with NaN mapped to -inf, so it ranks last, never first."""
        returns = self.objective(obs, actions)
        return torch.nan_to_num(returns, nan=-torch.inf)

    @staticmethod
    def best(actions: torch.Tensor, returns: torch.Tensor) -> Plan:
        """The highest-return sequence per start state."""
        idx = returns.argmax(dim=1)  # [B]
        rows = torch.arange(actions.shape[0], device=actions.device)
        chosen = actions[rows, idx]  # [B, H, A]
        return Plan(action=chosen[:, 0], actions=chosen, predicted_return=returns[rows, idx])

    @abstractmethod
    def plan(self, obs: torch.Tensor) -> Plan:
        """obs: [B, O] on the planner's device -> the plan for each start state."""
