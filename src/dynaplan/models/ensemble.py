"""Probabilistic ensemble of Gaussian MLPs (PETS: Chua et al. 2018, arXiv 1805.12114).

E members share an architecture and run as ONE batched matmul per layer (members.py).
Each member outputs a mean and a bounded
log-variance (sec. 4.1 and appendix A.1 of the paper: the log-variance is softly clamped
between learned bounds `max_logvar` and `min_logvar`, which a small penalty keeps tight).
Training minimizes the Gaussian negative log-likelihood (the ensemble's `loss`, one value
per member); every member sees its own bootstrap resample of the training rows
(models/fitting.py's `Bootstrap`), and after a fit the members of lowest validation error plan.

Shapes: E members, M rows, I inputs, D outputs. Everything here is in normalized units;
`input_norm` / `output_norm` map raw data in and out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dynaplan.models.members import Ensemble

BOUND_PENALTY = 0.01
"""The paper's weight of the log-variance bound penalty, per output."""


def bound_penalty_weight(out_dim: int) -> float:
    """The bound penalty's weight per output: the paper's 0.01, capped at 0.05 / D.

    A member's likelihood is a mean over its D outputs, so it pulls `min_logvar` down
    with a force of at most (1 - mse / variance) / D per output, while the penalty pushes
    it up (and `max_logvar` down) with its full weight w. Where the bound decides the
    variance they balance at variance = mse / (1 - w D): with a flat 0.01 that is twice
    the model's error at D = 50, and past D = 100 (Ant-v5 has 105) the penalty wins for
    good: the bound runs away above the data and the model's spread grows without limit
    (min_logvar +20, max_logvar -28 after 5,000 Ant-v5 steps). Capped at 0.05 / D the
    floor is within 5% of the error at any D; at D <= 5 (Pendulum-v1, InvertedPendulum-v5)
    the weight is the paper's, unchanged. (Where an output never varies, both bounds
    fall together below the data, which is right for it, and may cross.)"""
    return min(BOUND_PENALTY, 0.05 / out_dim)


class GaussianEnsemble(Ensemble):
    """E Gaussian MLPs: [E, M, I] -> mean [E, M, D], log-variance [E, M, D] (arguments:
    Ensemble's)."""

    stochastic = True
    heads = 2

    def add_parameters(self) -> None:
        """The learned bounds of the log-variance."""
        self.max_logvar = nn.Parameter(torch.full((self.out_dim,), 0.5))
        self.min_logvar = nn.Parameter(torch.full((self.out_dim,), -10.0))

    def forward(
        self, x: torch.Tensor, members: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x: [E, M, I] normalized -> (mean, logvar) [E, M, D], normalized units. With
        `members` (indices [E']), only those members run and x is [E', M, I]."""
        out = self.network(x, members)
        mean, raw = out[..., : self.out_dim], out[..., self.out_dim :]
        logvar = self.max_logvar - F.softplus(self.max_logvar - raw)
        logvar = self.min_logvar + F.softplus(logvar - self.min_logvar)
        return mean, logvar

    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw inputs [E', M, I] of the kept members -> mean and std of the state change
        [E', M, D], raw units (what `EnsembleDynamics` propagates)."""
        mean, logvar = self(self.input_norm.normalize(x), self.kept_members(x))
        std = torch.exp(0.5 * logvar) * self.output_norm.std
        return self.output_norm.denormalize(mean), std

    # -- Learnable (types.py); examples, prepare and keep are Ensemble's ------------------

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Gaussian NLL per member [E] (constant dropped), averaged over rows and outputs,
        plus the paper's penalty on the log-variance bounds (`bound_penalty_weight`: 0.01
        up to 5 outputs); x [E, M, I] and y [E, M, D] normalized, each member its own rows."""
        mean, logvar = self(x)
        per_member = (((mean - y) ** 2) * torch.exp(-logvar) + logvar).mean(dim=(1, 2))
        weight = bound_penalty_weight(self.out_dim)
        return per_member + weight * (self.max_logvar.sum() - self.min_logvar.sum())

    @torch.no_grad()
    def validation_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Validation MSE of each member's mean [E]; x [M, I] and y [M, D] are shared."""
        mean, _ = self(x.expand(self.members, *x.shape))
        return ((mean - y) ** 2).mean(dim=(1, 2))
