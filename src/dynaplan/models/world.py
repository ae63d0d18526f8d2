"""Dynamics and reward models: a network between an input and an output normalizer.

Both take (obs, action). The dynamics network predicts the standardized state change
(Nagabandi et al. 2017, sec. IV): next_obs = obs + denormalize(f(normalize([obs, a]))).
The reward network predicts the standardized reward: r = denormalize(g(normalize([obs, a]))).
Each is `Learnable` (types.py): it names its examples and states its loss, the mean
squared error in normalized units, so `models.fit` trains it.
"""

from __future__ import annotations

import torch
from torch import nn

from dynaplan.models.mlp import MLP
from dynaplan.models.normalizer import Normalizer, fit_normalizers
from dynaplan.types import Transitions

VALID_CHUNK = 1024
"""Validation rows per forward pass. A whole-split pass made [rows, 512] temporaries of
8 MB at 4,000 rows, which glibc maps fresh from the OS and the kernel faults in page by
page; in chunks they are reused from the heap (one-epoch fits of `dynaplan bench`:
0.309 vs 0.319 s, interleaved, medians of 10)."""


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

    # -- Learnable (types.py) ------------------------------------------------------------

    def prepare(self, x: torch.Tensor, y: torch.Tensor,
                train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return fit_normalizers(self.input_norm, self.output_norm, x, y, train)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean squared error of the network on normalized (x [n, I], y [n, D]): 0-dim."""
        return torch.mean((self.net(x) - y) ** 2)

    @torch.no_grad()
    def validation_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The same mean squared error in eval mode, in chunks of VALID_CHUNK rows."""
        total = x.new_zeros(())
        for xs, ys in zip(x.split(VALID_CHUNK), y.split(VALID_CHUNK), strict=True):
            total += torch.sum((self.net(xs) - ys) ** 2)
        return total / (x.shape[0] * y.shape[1])

    def keep(self, valid: torch.Tensor | None) -> float:
        """One network: nothing to choose."""
        return float("nan") if valid is None else valid.item()


class DynamicsModel(Regressor):
    """Predicts next observations from (obs [n, O], action [n, A])."""

    particles = 1
    """Deterministic: one rollout per candidate sequence."""

    def __init__(self, obs_dim: int, action_dim: int, **net: object) -> None:
        super().__init__(obs_dim + action_dim, obs_dim, **net)

    @staticmethod
    def targets(obs: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        return next_obs - obs

    def examples(self, data: Transitions) -> tuple[torch.Tensor, torch.Tensor]:
        """[obs, action] -> the state change."""
        return torch.cat([data.obs, data.action], dim=-1), self.targets(data.obs, data.next_obs)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return obs + self.predict(torch.cat([obs, action], dim=-1))


class RewardModel(Regressor):
    """Predicts rewards [n] from (obs [n, O], action [n, A]); next_obs is ignored."""

    def __init__(self, obs_dim: int, action_dim: int, **net: object) -> None:
        super().__init__(obs_dim + action_dim, 1, **net)

    def examples(self, data: Transitions) -> tuple[torch.Tensor, torch.Tensor]:
        """[obs, action] -> the reward [n, 1]."""
        return torch.cat([data.obs, data.action], dim=-1), data.reward[:, None]

    def forward(
        self, obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.predict(torch.cat([obs, action], dim=-1)).squeeze(-1)
