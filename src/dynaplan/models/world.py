"""Dynamics and reward models: a network between an input and an output normalizer.

Both take (obs, action). The dynamics network predicts the standardized state change
(Nagabandi et al. 2017, sec. IV): next_obs = obs + denormalize(f(normalize([obs, a]))).
The reward network predicts the standardized reward: r = denormalize(g(normalize([obs, a]))).
"""

from __future__ import annotations

import torch
from torch import nn

from dynaplan.models.mlp import MLP
from dynaplan.models.normalizer import Normalizer


class Regressor(nn.Module):
    """Normalized-space network with the normalizers that map to and from raw units."""

    def __init__(self, in_dim: int, out_dim: int, **net: object) -> None:
        """`net`: MLP options (hidden, batch_norm, activation); default the seed's MLP."""
        super().__init__()
        self.input_norm = Normalizer(in_dim)
        self.output_norm = Normalizer(out_dim)
        self.net = MLP(in_dim, out_dim, **net)  # type: ignore[arg-type]

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """x: [n, in_dim] raw -> [n, out_dim] raw."""
        return self.output_norm.denormalize(self.net(self.input_norm.normalize(x)))


class DynamicsModel(Regressor):
    """Predicts next observations from (obs [n, O], action [n, A])."""

    def __init__(self, obs_dim: int, action_dim: int, **net: object) -> None:
        super().__init__(obs_dim + action_dim, obs_dim, **net)

    @staticmethod
    def targets(obs: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        return next_obs - obs

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return obs + self.predict(torch.cat([obs, action], dim=-1))


class RewardModel(Regressor):
    """Predicts rewards [n] from (obs [n, O], action [n, A]); next_obs is ignored."""

    def __init__(self, obs_dim: int, action_dim: int, **net: object) -> None:
        super().__init__(obs_dim + action_dim, 1, **net)

    def forward(
        self, obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.predict(torch.cat([obs, action], dim=-1)).squeeze(-1)
